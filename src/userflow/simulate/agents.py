"""User-agent strings as browsers and bots sent them in 2026, with what each one is.

Chrome, Edge and Samsung Internet send the reduced UA ("Android 10; K", minor
versions zeroed) and Safari on iOS freezes the OS at 18_7, so these strings are
what a real log holds, not what a parser would wish for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Agent:
    ua: str
    device_type: str  # desktop | mobile | tablet | bot, as the ingest's enrichment will say
    browser: str
    weight: float


_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"
_LINUX = "Mozilla/5.0 (X11; Linux x86_64)"
_BLINK = "AppleWebKit/537.36 (KHTML, like Gecko)"
_WEBKIT = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
_ANDROID = "Mozilla/5.0 (Linux; Android 10; K)"
_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X)"
_IPAD = "Mozilla/5.0 (iPad; CPU OS 18_7 like Mac OS X)"

# fmt: off
DESKTOP: Final = (
    Agent(f"{_WIN} {_BLINK} Chrome/154.0.0.0 Safari/537.36", "desktop", "Chrome", 24),
    Agent(f"{_WIN} {_BLINK} Chrome/153.0.0.0 Safari/537.36", "desktop", "Chrome", 8),
    Agent(f"{_MAC} {_BLINK} Chrome/154.0.0.0 Safari/537.36", "desktop", "Chrome", 12),
    Agent(f"{_LINUX} {_BLINK} Chrome/154.0.0.0 Safari/537.36", "desktop", "Chrome", 3),
    Agent(f"{_WIN} {_BLINK} Chrome/154.0.0.0 Safari/537.36 Edg/154.0.0.0", "desktop", "Edge", 10),
    Agent(f"{_MAC} {_BLINK} Chrome/153.0.0.0 Safari/537.36 Edg/153.0.0.0", "desktop", "Edge", 1),
    Agent(f"{_MAC} {_WEBKIT} Version/27.0 Safari/605.1.15", "desktop", "Safari", 9),
    Agent(f"{_MAC} {_WEBKIT} Version/26.6 Safari/605.1.15", "desktop", "Safari", 3),
    Agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:156.0) Gecko/20100101 Firefox/156.0",
          "desktop", "Firefox", 5),
    Agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:156.0) Gecko/20100101 Firefox/156.0",
          "desktop", "Firefox", 1.5),
    Agent("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:155.0) Gecko/20100101 Firefox/155.0",
          "desktop", "Firefox", 1.5),
)

MOBILE: Final = (
    Agent(f"{_IPHONE} {_WEBKIT} Version/27.0 Mobile/15E148 Safari/604.1", "mobile", "Safari", 24),
    Agent(f"{_IPHONE} {_WEBKIT} Version/26.4 Mobile/15E148 Safari/604.1", "mobile", "Safari", 6),
    Agent(f"{_IPHONE} {_WEBKIT} CriOS/153.0.7850.54 Mobile/15E148 Safari/604.1",
          "mobile", "Chrome", 4),
    Agent(f"{_ANDROID} {_BLINK} Chrome/154.0.0.0 Mobile Safari/537.36", "mobile", "Chrome", 40),
    Agent(f"{_ANDROID} {_BLINK} SamsungBrowser/29.0 Chrome/136.0.0.0 Mobile Safari/537.36",
          "mobile", "Samsung Internet", 12),
    Agent(f"{_ANDROID} {_BLINK} Chrome/154.0.0.0 Mobile Safari/537.36 EdgA/154.0.0.0",
          "mobile", "Edge", 2),
    Agent("Mozilla/5.0 (Android 16; Mobile; rv:156.0) Gecko/156.0 Firefox/156.0",
          "mobile", "Firefox", 2),
)

# iPads show the desktop Safari string by default, which no one can tell from a
# Mac; these are the ones that do say "iPad" or are Android tablets (no "Mobile").
TABLET: Final = (
    Agent(f"{_IPAD} {_WEBKIT} Version/27.0 Mobile/15E148 Safari/604.1", "tablet", "Safari", 45),
    Agent(f"{_IPAD} {_WEBKIT} CriOS/153.0.7850.54 Mobile/15E148 Safari/604.1",
          "tablet", "Chrome", 10),
    Agent(f"{_ANDROID} {_BLINK} Chrome/154.0.0.0 Safari/537.36", "tablet", "Chrome", 30),
    Agent(f"{_ANDROID} {_BLINK} SamsungBrowser/29.0 Chrome/136.0.0.0 Safari/537.36",
          "tablet", "Samsung Internet", 15),
)

HUMAN: Final = {"desktop": DESKTOP, "mobile": MOBILE, "tablet": TABLET}

_GOOGLEBOT = "compatible; Googlebot/2.1; +http://www.google.com/bot.html"

BOTS: Final = (
    Agent("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) " + _BLINK
          + f" Chrome/153.0.7850.54 Mobile Safari/537.36 ({_GOOGLEBOT})", "bot", "Googlebot", 18),
    Agent(f"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; {_GOOGLEBOT}) "
          "Chrome/153.0.7850.54 Safari/537.36", "bot", "Googlebot", 12),
    Agent("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
          "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
          "bot", "bingbot", 20),
    Agent("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
          "bot", "AhrefsBot", 15),
    Agent("python-requests/2.34.2", "bot", "Python Requests", 8),
    Agent("python-requests/2.32.5", "bot", "Python Requests", 4),
    Agent("curl/8.14.1", "bot", "curl", 5),
    Agent("curl/8.5.0", "bot", "curl", 3),
    Agent(f"{_LINUX} {_BLINK} HeadlessChrome/153.0.0.0 Safari/537.36", "bot", "HeadlessChrome", 15),
)
# fmt: on

BY_UA: Final = {a.ua: a for agents in (*HUMAN.values(), BOTS) for a in agents}
