"""A real Kubernetes API server for the operator tests, started and stopped by them.

etcd (Debian's etcd-server) and kube-apiserver (built from k8s.io/kubernetes by
scripts/kube-apiserver.sh, cached) on loopback ports, with a CA and serving
certificate made by openssl in a temporary directory, a static admin token and
RBAC; a kubeconfig for the built kubectl (admin) and one for the operator, which
authenticates as the chart's operator ServiceAccount and gets exactly the
chart's ClusterRole and Role (rendered by helm, like the Company CRD, with the
chart tests' cached helm), so the chart's RBAC is what the tests exercise;
Strimzi's KafkaTopic CRD is installed too. No
kubelet, scheduler or controller-manager: nothing here needs pods, and the
operator deletes what it owns itself.

This folder has no __init__.py and no conftest.py on purpose: a package named
`operator` would shadow the standard library's, so the tests import this module
by its own name and pull the fixtures in from it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from integration.stack import free_port, wait_for
from k8s import tools

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = os.environ.get("K8S_VERSION", "v1.35.4")
STRIMZI_CRDS = ROOT / "tests" / "k8s" / "crds" / "strimzi-kafka-v1-subset.yaml"


class HarnessError(RuntimeError):
    """The API server could not be built or started; the message says which command failed."""


def build_binaries() -> Path:
    """scripts/kube-apiserver.sh: builds once, then only prints the bin dir."""
    try:
        done = tools.run(["bash", str(ROOT / "scripts" / "kube-apiserver.sh")],
                         env={**os.environ, "K8S_VERSION": K8S_VERSION}, timeout=3600)
    except tools.ToolError as exc:
        raise HarnessError(str(exc)) from exc
    for line in done.stderr.splitlines():
        if "built kube-apiserver" in line:  # the first run: say how long it took, past capture
            print(f"\n{line}", file=sys.__stderr__)
    return Path(done.stdout.strip().splitlines()[-1])


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise HarnessError(f"`openssl {' '.join(args)}` failed:\n{done.stderr}")


def make_certs(d: Path) -> None:
    """A throwaway CA, a serving certificate for 127.0.0.1 and a service-account key."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=userflow-test-ca", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key", "-out",
            "apiserver.csr", "-subj", "/CN=kube-apiserver", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "apiserver.crt", "-days", "2", "-extfile", "san.ext", cwd=d)
    openssl("genrsa", "-out", "sa.key", "2048", cwd=d)


@dataclass
class Cluster:
    server: str
    kubeconfig: Path  # the admin's
    operator_kubeconfig: Path  # the chart's operator ServiceAccount's
    kubectl_bin: Path
    workdir: Path

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(self.kubectl_bin), "--kubeconfig", str(self.kubeconfig), *args],
                              input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stderr}{done.stdout}")
        return done

    def apply(self, manifest: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.kubectl("apply", "-f", "-", stdin=text)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json", *(["-n", namespace] if namespace else [])]
        done = self.kubectl(*args, check=False)
        if done.returncode != 0:
            if "NotFound" in done.stderr:
                return None
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
        return json.loads(done.stdout)


class Processes:
    """Child processes in their own process groups, stopped in reverse order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.running.append((name, proc))
        return proc

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self) -> None:
        for _, proc in reversed(self.running):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
        self.running.clear()


def _healthy(url: str, cafile: Path | None = None) -> bool:
    verify = ssl.create_default_context(cafile=str(cafile)) if cafile else False
    try:
        return httpx.get(url, timeout=2, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_cluster(bin_dir: Path, workdir: Path,
                    service_account: tuple[str, str]) -> Iterator[Cluster]:
    certs, logs = workdir / "certs", workdir / "logs"
    certs.mkdir()
    logs.mkdir()
    make_certs(certs)
    admin, operator = secrets.token_hex(16), secrets.token_hex(16)
    namespace, name = service_account
    (certs / "tokens.csv").write_text(
        f'{admin},admin,admin-uid,"system:masters"\n'
        # The name RBAC gives a ServiceAccount, so the chart's bindings apply to this token.
        f'{operator},system:serviceaccount:{namespace}:{name},operator-uid,'
        f'"system:serviceaccounts,system:serviceaccounts:{namespace},system:authenticated"\n')
    # etcd's fsyncs are what make an API server slow on a busy disk: keep its data in memory.
    shm = Path("/dev/shm")
    data = Path(tempfile.mkdtemp(prefix="uf-etcd-", dir=shm if os.access(shm, os.W_OK) else workdir))
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    procs = Processes(logs)
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, data, ignore_errors=True)
        stack.callback(procs.stop_all)
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        procs.start("etcd", [
            "/usr/bin/etcd", "--name", "uf", "--data-dir", str(data),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"uf={peer_url}", "--log-level", "warn"])
        try:
            wait_for(lambda: _healthy(f"{etcd_url}/health"), 30, "etcd")
        except TimeoutError as exc:
            raise HarnessError(f"etcd did not start:\n{procs.tail('etcd')}") from exc
        procs.start("kube-apiserver", [
            str(bin_dir / f"kube-apiserver-{K8S_VERSION}"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--tls-cert-file={certs / 'apiserver.crt'}",
            f"--tls-private-key-file={certs / 'apiserver.key'}",
            f"--client-ca-file={certs / 'ca.crt'}",
            f"--cert-dir={certs}",
            f"--token-auth-file={certs / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={certs / 'sa.key'}",
            f"--service-account-signing-key-file={certs / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/24",
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v=1"])
        server = f"https://127.0.0.1:{api_port}"
        try:
            wait_for(lambda: _healthy(f"{server}/readyz", certs / "ca.crt"), 90,
                     "kube-apiserver /readyz")
        except TimeoutError as exc:
            raise HarnessError(f"kube-apiserver did not become ready:\n"
                               f"{procs.tail('kube-apiserver')}") from exc
        yield Cluster(server, write_kubeconfig(workdir / "kubeconfig", server, certs, admin),
                      write_kubeconfig(workdir / "operator.kubeconfig", server, certs, operator),
                      bin_dir / f"kubectl-{K8S_VERSION}", workdir)


def write_kubeconfig(path: Path, server: str, certs: Path, token: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {
            "server": server, "certificate-authority": str(certs / "ca.crt")}}],
        "users": [{"name": "user", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "user"}}],
    }))
    return path


def helm_render(*args: str) -> str:
    """`helm template` of the chart (helm built and cached by the chart tests' tools)."""
    helm = tools.build_tools().helm
    return tools.run([str(helm), "template", "uf", str(tools.CHART), *args], timeout=120).stdout


@dataclass(frozen=True)
class OperatorRbac:
    service_account: tuple[str, str]  # (namespace, name)
    manifests: str  # the ClusterRole, Role and their bindings


def operator_rbac(release_namespace: str, kafka_namespace: str) -> OperatorRbac:
    docs = [d for d in yaml.safe_load_all(helm_render(
        "--namespace", release_namespace, "--set", f"kafka.strimzi.namespace={kafka_namespace}",
        "--show-only", "templates/operator.yaml")) if d]
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    rbac = [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]
    return OperatorRbac((release_namespace, account["metadata"]["name"]), yaml.safe_dump_all(rbac))


def install(cluster: Cluster, rbac: OperatorRbac, namespaces: list[str]) -> None:
    """Namespaces, the Company CRD, Strimzi's CRDs and the operator's RBAC."""
    for namespace in namespaces:
        cluster.kubectl("create", "namespace", namespace)
    cluster.apply(helm_render("--show-only", "templates/crd-company.yaml"))
    cluster.apply(STRIMZI_CRDS.read_text())
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/companies.userflow.io", "crd/kafkatopics.kafka.strimzi.io")
    cluster.apply(rbac.manifests)
