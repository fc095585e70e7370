"""The settings document analytics.js fetches: its events sent back to the ingest, nothing else loaded."""

from __future__ import annotations

from userflow.ingest.segment_settings import PATH, PATH_PATTERN, document


def test_the_document_sends_events_back_here_and_loads_nothing() -> None:
    doc = document("ufw_key", "https", "events.example.com")
    # One integration: a second one makes analytics.js load Segment's classic destinations.
    assert list(doc["integrations"]) == ["Segment.io"]
    segment = doc["integrations"]["Segment.io"]
    assert (segment["apiKey"], segment["apiHost"], segment["protocol"]) == (
        "ufw_key", "events.example.com/v1", "https")
    assert doc["remotePlugins"] == []
    assert not any(doc["enabledMiddleware"].values())
    assert not doc["middlewareSettings"].get("routingRules")
    assert doc["metrics"]["sampleRate"] == 0
    assert doc["legacyVideoPluginsEnabled"] is False


def test_the_path_pattern_matches_the_route() -> None:
    assert PATH_PATTERN.fullmatch(PATH.replace("{writeKey}", "ufw_abc-_"))
    assert not PATH_PATTERN.fullmatch("/v1/projects/a/b/settings")
    assert not PATH_PATTERN.fullmatch("/v1/projects//settings")
