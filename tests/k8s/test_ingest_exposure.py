"""What the ingest exposes, and to whom: the proxies it believes, its metrics port, its docs.

- UF_TRUSTED_PROXIES (ingest.trustedProxies): whose X-Forwarded-For is believed; by
  default kind's pod network (where the ingress controller runs), [] for nobody.
- UF_INGEST_METRICS_PORT (ingest.metricsPort): /metrics on a port of its own, named
  `metrics` in the pod and the Service, scraped by the ServiceMonitor, reachable only
  from Prometheus when NetworkPolicies are on; the HTTP port stays the ingress's.
- UF_INGEST_DOCS (ingest.docs): /docs, /redoc, /openapi.json; off by default.
- What browsers and SDKs post to (Segment's analytics.js included: its short paths, /v1/b
  and its settings document) is routed by the Ingress and the HTTPRoute.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from userflow.ingest.app import EVENT_PATHS
from userflow.ingest.segment_settings import PATH as SETTINGS_PATH

from . import tools
from .conftest import VALUE_SETS, Render
from .test_chart import env_of, pod_spec

# value set -> (UF_TRUSTED_PROXIES, UF_INGEST_METRICS_PORT, UF_INGEST_DOCS)
EXPECTED = {
    "defaults": ("10.244.0.0/16", "9100", "false"),
    "everything": ("10.0.0.0/8,192.168.1.10,fd00::/8", "9200", "true"),
    "minimal": ("", "9100", "false"),
}


def ingest_container(render: Render) -> dict[str, Any]:
    (container,) = pod_spec(render.named("Deployment", "-ingest"))["containers"]
    return container


def port_named(ports: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (port,) = [p for p in ports if p["name"] == name]
    return port


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ingest_settings(name: str, renders: dict[str, Render]) -> None:
    env = env_of(ingest_container(renders[name]))
    got = tuple(env[v]["value"] for v in ("UF_TRUSTED_PROXIES", "UF_INGEST_METRICS_PORT", "UF_INGEST_DOCS"))
    assert got == EXPECTED[name]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_metrics_on_their_own_port(name: str, renders: dict[str, Render]) -> None:
    """The metrics port is the one UF_INGEST_METRICS_PORT names, in the pod and the Service;
    the ServiceMonitor scrapes it; the Ingress and the HTTPRoute never route to it."""
    render = renders[name]
    container = ingest_container(render)
    port = int(env_of(container)["UF_INGEST_METRICS_PORT"]["value"])
    assert port_named(container["ports"], "metrics")["containerPort"] == port
    assert port_named(container["ports"], "http")["containerPort"] == 8080 != port
    # probes stay on the HTTP port
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    service = render.named("Service", "-ingest")
    assert service["spec"]["ports"][0]["name"] == "http"
    metrics = port_named(service["spec"]["ports"], "metrics")
    assert (metrics["port"], metrics["targetPort"]) == (port, "metrics")
    for monitor in render.kind("ServiceMonitor"):
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    for ingress in render.kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["port"] == {"name": "http"}
    for route in render.kind("HTTPRoute"):
        for rule in route["spec"]["rules"]:
            assert {b["port"] for b in rule["backendRefs"]} == {service["spec"]["ports"][0]["port"]}
    annotations = render.named("Deployment", "-ingest")["spec"]["template"]["metadata"].get("annotations", {})
    if name == "everything":  # metrics.scrapeAnnotations: true
        assert {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")} == {
            "prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}
        assert annotations["example.com/scrape"] == "true"  # podAnnotations kept
    else:
        assert not [k for k in annotations if k.startswith("prometheus.io/")]


@pytest.mark.parametrize("name", ["everything", "external"])
def test_network_policy_keeps_the_metrics_port_for_prometheus(name: str, renders: dict[str, Render]) -> None:
    """Every ingress rule names its peers and its ports (no rule opens everything); the HTTP
    port admits only the ingress controller, the metrics port only Prometheus."""
    render = renders[name]
    port = int(env_of(ingest_container(render))["UF_INGEST_METRICS_PORT"]["value"])
    policy = render.named("NetworkPolicy", "-ingest")
    admitted: dict[int, list[str]] = {}
    for rule in policy["spec"]["ingress"]:
        assert rule.get("from") and rule.get("ports"), rule
        for p in rule["ports"]:
            for peer in rule["from"]:
                admitted.setdefault(p["port"], []).append(
                    peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] + "/"
                    + peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
    assert admitted == {8080: ["ingress-nginx/ingress-nginx"], port: ["monitoring/prometheus"]}


def test_metrics_port_must_differ_from_the_http_port(k8s_tools: tools.Tools) -> None:
    cmd = [str(k8s_tools.helm), "template", "uf", str(tools.CHART), "--kube-version", tools.KUBE_VERSION,
           "--set", "ingest.metricsPort=8080"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ingest.metricsPort" in done.stderr, done.stderr


PUBLIC_PATHS = [*EVENT_PATHS, SETTINGS_PATH.replace("{writeKey}", "ufw_key")]


def routes(path: str, match: str, prefix: bool) -> bool:
    """Whether a rule's path matches `path`: Prefix matches whole path segments."""
    return path == match or (prefix and path.startswith(match.rstrip("/") + "/"))


def test_every_public_path_is_routed(renders: dict[str, Render]) -> None:
    """In every value set that exposes the ingest, through an Ingress or an HTTPRoute."""
    exposed = []
    for name, render in renders.items():
        rules: list[tuple[str, bool]] = []
        for ingress in render.kind("Ingress"):
            rules += [(p["path"], p["pathType"] == "Prefix")
                      for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
        for route in render.kind("HTTPRoute"):
            rules += [(m["path"]["value"], m["path"]["type"] == "PathPrefix")
                      for rule in route["spec"]["rules"] for m in rule["matches"]]
        if rules:
            exposed.append(name)
            unrouted = [p for p in PUBLIC_PATHS if not any(routes(p, m, pre) for m, pre in rules)]
            assert unrouted == [], name
    assert {"defaults", "everything", "gateway-api"} <= set(exposed)
