"""Realistic traffic for UserFlow: a simulated week of a shop's visitors and bots, with its truth.

generate() is pure and deterministic for a seed; send() posts the messages to
the ingest API; report_table() renders what the send achieved.
"""

from userflow.simulate.generate import Simulation, generate
from userflow.simulate.report import SendReport, report_table
from userflow.simulate.send import send
from userflow.simulate.truth import Truth

__all__ = ["SendReport", "Simulation", "Truth", "generate", "report_table", "send"]
