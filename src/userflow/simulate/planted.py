"""The figures the generator plants on purpose; the truth reports them beside what it measured."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

WINDOW: Final = timedelta(days=7)

# Share of all messages that come from bots.
BOT_SHARE: Final = 0.05

EXPERIMENT_ID: Final = "checkout-button-color"
CONTROL: Final = "control"
TREATMENT: Final = "treatment"
GOAL_EVENT: Final = "Order Completed"
# Conversion among exposed users, over all devices.
CONVERSION: Final = {CONTROL: 0.10, TREATMENT: 0.13}

DEVICE_MIX: Final = {"desktop": 0.45, "mobile": 0.47, "tablet": 0.08}
# Relative purchase propensity by device; mobile converts markedly worse.
DEVICE_PROPENSITY: Final = {"desktop": 1.3, "mobile": 0.7, "tablet": 1.0}
# Deepest funnel step (1..3) a shopper who does not buy reaches, by device.
ABANDON_DEPTH: Final = {
    "desktop": (0.45, 0.35, 0.20),
    "mobile": (0.65, 0.25, 0.10),
    "tablet": (0.55, 0.30, 0.15),
}

FEATURE: Final = "dark_mode"
FEATURE_EVENT: Final = "Feature Used"
# Share of visitors who turn dark mode on at least once.
FEATURE_ADOPTION: Final = 0.20


def conversion_rate(variant: str, device: str) -> float:
    """Per-device rate, scaled so the device mix averages to CONVERSION[variant]."""
    mean_propensity = sum(DEVICE_MIX[d] * DEVICE_PROPENSITY[d] for d in DEVICE_MIX)
    return CONVERSION[variant] * DEVICE_PROPENSITY[device] / mean_propensity

# --- Anomalies (`userflow simulate --anomalies`): four weeks from a UTC midnight -------
# Weeks 0-2 plant nothing (week 2 is the quiet week a detector must leave alone); week 3
# holds a day on which one device's checkout conversion halves and an hour of a spike.
ANOMALY_WINDOW: Final = timedelta(days=28)
QUIET_WEEK: Final = 2  # the window's week (from 0): days 14 to 20
# On this day of the window (from 0), the payment of this share of the device's checkouts
# fails: the visitor submits the checkout form, the page reports an error, no order follows.
CHECKOUT_DROP_DAY: Final = 24
CHECKOUT_DROP_DEVICE: Final = "desktop"
CHECKOUT_FAILURE: Final = 0.5
# A page's error is a custom event of this name (PostHog's for a captured exception).
ERROR_EVENT: Final = "$exception"
# In this hour of the window (from 0: day 26, 15:00 UTC) a newsletter lands this share of
# all visitors on the site for their first visit: about three times the hour's traffic.
SPIKE_HOUR: Final = 26 * 24 + 15
SPIKE_SHARE: Final = 0.01
# The checkout funnel whose conversion halves: the form submitted, then the order.
CHECKOUT_FORM: Final = "form#checkout-form"
