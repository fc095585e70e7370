"""Bot traffic: crawlers walking the sitemap, scripts probing paths, headless scrapers."""

from __future__ import annotations

import random
from typing import Any, Final

from userflow.simulate import agents, site
from userflow.simulate.countries import BOT_BLOCKS, random_ip
from userflow.simulate.messages import (
    Message,
    context,
    message,
    new_id,
    page_fields,
    track_fields,
)
from userflow.simulate.site import Page

_SITEMAP: Final = (
    site.HOME,
    site.listing(),
    *(site.listing(c) for c in site.CATEGORIES),
    *(site.product_page(p) for p in site.PRODUCTS),
    site.BLOG,
    *site.POSTS,
    site.DOCS,
    *site.ARTICLES,
    site.PRICING,
    site.ABOUT,
    site.CONTACT,
)
# Scripts ask for real pages and for paths no page has.
_ANY_PATH: Final = _SITEMAP + tuple(site.page(p, "Not Found", "Not Found") for p in site.PROBES)
_CRAWLERS: Final = frozenset({"Googlebot", "bingbot", "AhrefsBot"})
# A run ends well inside the window: at most 150 events, none more than 4 s apart.
_LONGEST_RUN_MS: Final = 15 * 60_000


def write_bot(
    rng: random.Random, start_ms: int, end_ms: int, budget: int, out: list[tuple[int, Message]]
) -> None:
    """Appends one bot run of at most `budget` (≥ 1) messages to out."""
    agent = rng.choices(agents.BOTS, [a.weight for a in agents.BOTS])[0]
    ip = random_ip(rng, BOT_BLOCKS[agent.browser])
    anonymous_id, session_id = new_id(rng), new_id(rng)
    t = rng.randint(start_ms, end_ms - _LONGEST_RUN_MS)
    count = min(budget, rng.randint(15, 150))
    position = rng.randrange(len(_SITEMAP))

    def emit(at: Page, kind: str, fields: dict[str, Any]) -> None:
        ctx = context(agent.ua, ip, session_id, at, "", None)
        out.append((t, message(kind, new_id(rng), anonymous_id, None, t, ctx, fields)))

    while count > 0:
        if agent.browser in _CRAWLERS:
            # Crawlers go down the sitemap in order, a page every second or two.
            at = _SITEMAP[position % len(_SITEMAP)]
            position += 1
            t += rng.randint(500, 4000)
        elif agent.browser == "HeadlessChrome":
            at = site.product_page(rng.choice(site.PRODUCTS))
            t += rng.randint(50, 600)
        else:
            at = rng.choice(_ANY_PATH)
            t += rng.randint(20, 300)
        emit(at, "page", page_fields(at, ""))
        count -= 1
        if agent.browser == "HeadlessChrome" and count > 0:
            # A scraper scrolls to the bottom at once to make the page load everything.
            t += rng.randint(20, 200)
            emit(at, "track", track_fields("scroll", {"scroll_depth": 100}))
            count -= 1
