"""The settings document Segment's analytics.js fetches from its CDN, served by the ingest.

@segment/analytics-next loads `{cdnURL}/v1/projects/{writeKey}/settings`
before it sends anything, and reads from it where to send events
(integrations["Segment.io"]: apiKey, apiHost, protocol) and what else to
load. A site that points `cdnURL` at the ingest gets an answer that sends
every event back to the ingest, as the request reached it, and loads nothing
else: one integration (more would load Segment's classic destinations from
its CDN), no remote plugins, no middleware, no routing rules, no edge
function, no video plugins, and remote metrics off (sampleRate 0; they
would be posted to `{apiHost}/m`).

The document reveals no more than that the key is live, so any origin may
read it (userflow.ingest.cors.PublicRead).
"""

from __future__ import annotations

import re
from typing import Any, Final

from userflow.events.errors import FieldError
from userflow.ingest.errors import BadRequest, NotFound
from userflow.ingest.tenants import TenantCache

PATH: Final = "/v1/projects/{writeKey}/settings"
PATH_PATTERN: Final = re.compile(r"/v1/projects/[^/]+/settings")
# Short enough that a key made or revoked shows up soon; the events themselves are checked
# against the live key anyway.
CACHE_CONTROL: Final = "public, max-age=300"
# Every event type enabled, no per-event destination switches: what Segment serves a new source.
_PLAN: Final = {
    "track": {"__default": {"enabled": True, "integrations": {}}},
    "identify": {"__default": {"enabled": True}},
    "group": {"__default": {"enabled": True}},
}


def document(write_key: str, scheme: str, host: str) -> dict[str, Any]:
    """The settings for `write_key`, its events sent to `scheme://host/v1/{t,p,i,...}`."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{host}/v1",
                "protocol": scheme,
                # Only Segment's own routing reads the _metadata this would add to each event.
                "addBundledMetadata": False,
                "unbundledIntegrations": [],
                "maybeBundledConfigIds": {},
            },
        },
        "plan": _PLAN,
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


async def settings_for(cache: TenantCache, write_key: str, scheme: str,
                       host: str | None) -> dict[str, Any]:
    """The document for a live write key, for a request that reached us at `scheme://host`.

    NotFound for a key unknown or revoked; BadRequest when the request named no
    valid host (userflow.ingest.forwarded: TrustedProxies.reached_as).
    """
    if await cache.by_write_key(write_key) is None:
        raise NotFound("no source has this write key, or it was revoked",
                       [FieldError("writeKey", "unknown or revoked")])
    if host is None:
        raise BadRequest("the request's Host (or a trusted proxy's X-Forwarded-Host) is not a"
                         " host name: the settings could not name the API host",
                         [FieldError("Host", "missing or not host[:port]")])
    return document(write_key, scheme, host)
