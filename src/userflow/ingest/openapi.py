"""Request-body schemas for the OpenAPI document (the handlers parse bodies themselves)."""

from __future__ import annotations

from typing import Any

_CONTEXT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ip": {"type": "string"},
        "userAgent": {"type": "string"},
        "sessionId": {"type": "string"},
        "page": {"type": "object"},
        "campaign": {"type": "object"},
    },
}
MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string",
                 "enum": ["track", "page", "screen", "identify", "group", "alias"]},
        "event": {"type": "string", "description": "track: the event name"},
        "name": {"type": "string", "description": "page/screen: the page name"},
        "messageId": {"type": "string"},
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "originalTimestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": _CONTEXT,
    },
}
BATCH: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": MESSAGE, "minItems": 1, "maxItems": 2000,
                  "description": "at most UF_MAX_BATCH_MESSAGES (2,000) messages, 500 KB"},
        "sentAt": {"type": "string", "format": "date-time"},
        "writeKey": {"type": "string"},
        "context": _CONTEXT,
    },
}
SEED_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event_type", "user_id", "page_url"],
    "properties": {
        "event_id": {"type": "string"},
        "event_timestamp": {"type": "number", "description": "unix seconds"},
        "user_id": {"type": "string"},
        "session_id": {"type": "string"},
        "company_id": {"type": "string"},
        "event_type": {"type": "string",
                       "enum": ["page_view", "click", "scroll", "form_submit", "hover",
                                "keydown", "custom", "identify"]},
        "page_url": {"type": "string"},
        "element_selector": {"type": "string"},
        "element_text": {"type": "string"},
        "element_type": {"type": "string"},
        "target_url": {"type": "string"},
        "last_page_url": {"type": "string"},
        "user_agent": {"type": "string"},
        "ip_address": {"type": "string"},
        "x_coordinate": {"type": "integer"},
        "y_coordinate": {"type": "integer"},
        "session_duration_seconds": {"type": "integer"},
        "metadata": {"oneOf": [{"type": "object"}, {"type": "string"}]},
    },
}
_ERROR: dict[str, Any] = {"description": "see `errors` for each field and reason"}
_ORIGIN: dict[str, Any] = {
    "description": "origin_not_allowed: the request's Origin is not in the tenant's allowed origins",
}
_TIMEOUT: dict[str, Any] = {
    "description": "request_timeout: the body did not arrive in time; the connection is closed",
}
_RETRY: dict[str, Any] = {
    "description": "rate_limited: over the tenant's events a second, or too_many_requests: the"
                   " ingest is busy; nothing was accepted, retry after `Retry-After` seconds",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}

_SETTINGS: dict[str, Any] = {
    "type": "object",
    "required": ["integrations", "remotePlugins"],
    "properties": {
        "integrations": {
            "type": "object",
            "required": ["Segment.io"],
            "properties": {"Segment.io": {
                "type": "object",
                "required": ["apiKey", "apiHost", "protocol"],
                "properties": {
                    "apiKey": {"type": "string", "description": "the write key"},
                    "apiHost": {"type": "string", "description": "host[:port]/v1 of this ingest"},
                    "protocol": {"type": "string", "enum": ["http", "https"]},
                },
            }},
        },
        "remotePlugins": {"type": "array", "maxItems": 0},
        "metrics": {"type": "object"},
    },
}
SETTINGS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "integrations['Segment.io'] names this ingest (apiKey, apiHost, protocol);"
                         " no remote plugins, middleware or metrics. Cached for 5 minutes; any"
                         " origin may read it",
          "content": {"application/json": {"schema": _SETTINGS}}},
    400: {"description": "the request named no valid Host: the API host cannot be named"},
    404: {"description": "not_found: the write key is unknown or revoked"},
}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": {"400": _ERROR, "401": _ERROR, "403": _ORIGIN, "408": _TIMEOUT,
                      "413": _ERROR, "415": _ERROR, "429": _RETRY, "503": _ERROR},
    }
