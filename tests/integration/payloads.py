"""Payload builders shared by the integration tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
US_IP = "8.8.8.8"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def message(kind: str = "track", event: str = "click", *, ts: datetime | None = None,
            user: str = "u1", session: str = "s1", ua: str = CHROME_WINDOWS, ip: str = US_IP,
            **props: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": kind,
        "messageId": str(uuid.uuid4()),
        "userId": user,
        "anonymousId": f"anon-{user}",
        "timestamp": iso(ts or datetime.now(UTC) - timedelta(seconds=5)),
        "context": {"userAgent": ua, "ip": ip, "sessionId": session,
                    "page": {"url": "https://shop.example/products?utm_source=news",
                             "title": "Products", "referrer": "https://www.google.com/"}},
        "properties": props,
    }
    if kind == "track":
        msg["event"] = event
    return msg


def mixed_batch(n: int, session: str = "s1") -> list[dict[str, Any]]:
    """n messages cycling through page views, interactions, custom events and identify."""
    shapes = [
        lambda: message("page", session=session),
        lambda: message("track", "click", session=session, selector="#buy", text="Buy", x=10, y=20,
                        href="https://shop.example/cart"),
        lambda: message("track", "scroll", session=session, scroll_depth=75),
        lambda: message("track", "hover", session=session, selector="nav a", x=1, y=2),
        lambda: message("track", "keydown", session=session, key="Enter"),
        lambda: message("track", "form_submit", session=session, form_id="#signup"),
        lambda: message("track", "Order Completed", session=session, revenue=19.99,
                        experiment_id="exp-1", variant="treatment"),
        lambda: {**message("identify", session=session), "traits": {"plan": "pro"}},
    ]
    return [shapes[i % len(shapes)]() for i in range(n)]
