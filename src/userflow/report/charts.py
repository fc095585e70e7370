"""The report's charts: matplotlib figures (the Agg backend: no display) as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

import matplotlib

matplotlib.use("Agg")  # before pyplot: a server has no display

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

_SIZE = (8.0, 3.2)
_DPI = 100


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=_DPI)
    plt.close(fig)
    return out.getvalue()


def lines(title: str, times: Sequence[datetime], series: dict[str, Sequence[float]]) -> bytes:
    """Several series over the same times (the overview's events, users, sessions)."""
    fig, ax = plt.subplots(figsize=_SIZE)
    for name, values in series.items():
        ax.plot(times, values, marker="o", markersize=3, label=name)
    ax.set_title(title)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)


def bars(title: str, labels: Sequence[str], values: Sequence[float], unit: str = "") -> bytes:
    """One value per label, largest first as given (breakdowns, pages, funnel steps)."""
    fig, ax = plt.subplots(figsize=(_SIZE[0], max(2.0, 0.35 * len(labels) + 1.0)))
    positions = range(len(labels))
    ax.barh(list(positions), list(values), color="#4c72b0")
    ax.set_yticks(list(positions), [label[:40] for label in labels], fontsize="small")
    ax.invert_yaxis()
    ax.set_title(title)
    if unit:
        ax.set_xlabel(unit)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def anomaly(title: str, times: Sequence[datetime], actual: Sequence[float | None],
            expected: Sequence[float | None], judged_from: datetime | None,
            flagged: Sequence[tuple[datetime, float]]) -> bytes:
    """A series against its baseline, the judged range shaded, the anomalies circled."""
    fig, ax = plt.subplots(figsize=_SIZE)
    ax.plot(times, [float("nan") if v is None else v for v in expected], color="#999999",
            linestyle="--", label="expected")
    ax.plot(times, [float("nan") if v is None else v for v in actual], color="#4c72b0",
            label="actual")
    if judged_from is not None and times:
        ax.axvspan(judged_from, times[-1], color="#f0f0f0", zorder=0, label="judged")
    if flagged:
        ax.scatter([t for t, _ in flagged], [v for _, v in flagged], s=80, facecolors="none",
                   edgecolors="#c44e52", linewidths=2, zorder=3, label="anomaly")
    ax.set_title(title)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)
