"""The Kubernetes API calls the operator makes (official client, sync: kopf runs
sync handlers in threads), with the client's errors made typed: a missing object
is None, a refused one is InvalidSpec, anything that may pass is Unavailable."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import kopf
import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from userflow.operator.errors import InvalidSpec, Unavailable
from userflow.operator.topic import STRIMZI

T = TypeVar("T")


def configuration() -> client.Configuration:
    """In a pod its service account; elsewhere $KUBECONFIG or ~/.kube/config."""
    found = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=found)
    except config.ConfigException:
        # Read $KUBECONFIG now: the client's own default was fixed when it was imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None,
                                client_configuration=found)
    return found


def connect() -> client.ApiClient:
    return client.ApiClient(configuration())


def connection_info(found: client.Configuration) -> kopf.ConnectionInfo:
    """The same credentials for kopf's own API client (as kopf.login_via_client does)."""
    header = found.get_api_key_with_prefix("BearerToken") or found.get_api_key_with_prefix("authorization")
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=found.host, ca_path=found.ssl_ca_cert, insecure=not found.verify_ssl,
        username=found.username or None, password=found.password or None,
        scheme=scheme or None, token=token or None,
        certificate_path=found.cert_file, private_key_path=found.key_file)


@contextmanager
def api_errors(what: str) -> Iterator[None]:
    try:
        yield
    except ApiException as exc:
        if exc.status in (400, 422):
            raise InvalidSpec(f"{what}: the API server refused it: {exc.reason}: {exc.body}") from exc
        if exc.status == 403:
            raise Unavailable(f"{what}: forbidden (check the operator's RBAC): {exc.body}",
                              "Forbidden") from exc
        raise Unavailable(f"{what}: HTTP {exc.status} {exc.reason}", "ApiError") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Unavailable(f"{what}: {exc}", "ApiUnreachable") from exc


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def _dict(self, obj: Any) -> dict[str, Any]:
        return obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj)

    def _get(self, what: str, call: Callable[[], T]) -> dict[str, Any] | None:
        with api_errors(f"reading {what}"):
            try:
                return self._dict(call())
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

    def _delete(self, what: str, call: Callable[[], object]) -> bool:
        with api_errors(f"deleting {what}"):
            try:
                call()
                return True
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise

    # --- Secrets -----------------------------------------------------------------

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(f"Secret {namespace}/{name}",
                         lambda: self.core.read_namespaced_secret(name, namespace))

    def put_secret(self, namespace: str, body: dict[str, Any], exists: bool) -> None:
        name = body["metadata"]["name"]
        with api_errors(f"writing Secret {namespace}/{name}"):
            if exists:
                self.core.replace_namespaced_secret(name, namespace, body)
            else:
                self.core.create_namespaced_secret(namespace, body)

    def delete_secret(self, namespace: str, name: str) -> bool:
        return self._delete(f"Secret {namespace}/{name}",
                            lambda: self.core.delete_namespaced_secret(name, namespace))

    # --- Strimzi KafkaTopics -----------------------------------------------------------

    def get_topic(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(f"KafkaTopic {namespace}/{name}",
                         lambda: self.custom.get_namespaced_custom_object(*STRIMZI[:2], namespace,
                                                                          STRIMZI[2], name))

    def create_topic(self, namespace: str, body: dict[str, Any]) -> None:
        with api_errors(f"creating KafkaTopic {namespace}/{body['metadata']['name']}"):
            self.custom.create_namespaced_custom_object(*STRIMZI[:2], namespace, STRIMZI[2], body)

    def patch_topic(self, namespace: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        with api_errors(f"patching KafkaTopic {namespace}/{name}"):
            self.custom.patch_namespaced_custom_object(*STRIMZI[:2], namespace, STRIMZI[2], name,
                                                       body)

    def delete_topic(self, namespace: str, name: str) -> bool:
        return self._delete(f"KafkaTopic {namespace}/{name}",
                            lambda: self.custom.delete_namespaced_custom_object(
                                *STRIMZI[:2], namespace, STRIMZI[2], name))
