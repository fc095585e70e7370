"""The report's sections, in order: the anomalies open it (ids are the HTML anchors)."""

from __future__ import annotations

from typing import Final

SECTIONS: Final = (
    ("anomalies", "Anomalies"),
    ("summary", "Executive summary"),
    ("traffic", "Traffic"),
    ("devices", "Devices and browsers"),
    ("sessions", "Sessions and bounce"),
    ("funnels", "Funnels"),
    ("content", "Content"),
    ("regions", "Regions"),
    ("experiments", "Experiments"),
    ("adoption", "Adoption"),
    ("recommendations", "Recommendations"),
)
TITLES: Final = dict(SECTIONS)
