#!/usr/bin/env bash
# The operator tests' real API server, built once from the Go module proxy into
# a cache outside the repository, and etcd from Debian's packages; prints the
# bin directory (last line):
#   kube-apiserver-$K8S_VERSION   k8s.io/kubernetes/cmd/kube-apiserver
#   kubectl-$K8S_VERSION          k8s.io/kubernetes/cmd/kubectl
# and installs etcd-server with apt-get when /usr/bin/etcd is missing.
#
# k8s.io/kubernetes is not meant to be required as a module: its go.mod points
# every staging module (k8s.io/api, k8s.io/apiserver, ...) at ./staging/src
# with version v0.0.0. A small wrapper module (generated in the cache, never
# committed) requires it and replaces each of those with the published release
# v0.<minor>.<patch>; the replace list is generated from its own go.mod. The
# version ldflags make `kubectl version` and helm see a real server version.
# A second run finds the binaries and builds nothing.
# Usage: bash scripts/kube-apiserver.sh      -> prints the bin dir
# Env:   XDG_CACHE_HOME, GO (the go binary), K8S_VERSION
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.35.4}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/userflow"
BIN="$CACHE/bin"
mkdir -p "$BIN"

GO="${GO:-$(command -v go || true)}"
[ -n "$GO" ] || GO=/usr/local/go/bin/go

exec 9>"$CACHE/.kube-apiserver.lock"
flock 9

if ! [ -x /usr/bin/etcd ]; then
  echo "kube-apiserver.sh: installing etcd-server from apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends etcd-server >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends etcd-server >&2; }
fi

apiserver="$BIN/kube-apiserver-$K8S_VERSION"
kubectl="$BIN/kubectl-$K8S_VERSION"
if [ -x "$apiserver" ] && [ -x "$kubectl" ]; then
  echo "$BIN"
  exit 0
fi

if ! [ -x "$GO" ] && ! command -v "$GO" >/dev/null 2>&1; then
  echo "kube-apiserver.sh: no go toolchain at '$GO' (set GO, or put go on PATH)" >&2
  exit 1
fi

# v1.35.4 -> 1, 35, v0.35.4 (the staging modules' release of the same Kubernetes).
IFS=. read -r major minor patch <<<"${K8S_VERSION#v}"
staging="v0.$minor.$patch"
# Two cores here: keep the build from starving everything else (and its memory bounded).
export GOFLAGS="-p=2" GOMAXPROCS=2 GOMEMLIMIT=4GiB GOTOOLCHAIN=local CGO_ENABLED=0

work="$CACHE/kube-build/$K8S_VERSION"
mkdir -p "$work"
cd "$work"

echo "kube-apiserver.sh: building kube-apiserver and kubectl $K8S_VERSION (several minutes, once)" >&2
gomod="$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
  | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
[ -f "$gomod" ] || { echo "kube-apiserver.sh: no go.mod for k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }

{
  echo "module userflow.test/kubebuild"
  echo
  echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
  grep '^godebug ' "$gomod" || true   # the same runtime defaults as upstream's builds
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  # "	k8s.io/api => ./staging/src/k8s.io/api" -> "replace k8s.io/api => k8s.io/api v0.35.4"
  sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._/-]*\) => \./staging/src/.*$#replace \1 => \1 '"$staging"'#p' "$gomod"
} >go.mod
grep -q '^replace k8s.io/api ' go.mod || { echo "kube-apiserver.sh: found no staging replaces in $gomod" >&2; exit 1; }
cat >tools.go <<'EOF'
//go:build tools

// Package tools only names the commands this module builds, for `go mod tidy`.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
"$GO" mod tidy >&2

pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor \
  -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
for cmd in kube-apiserver kubectl; do
  nice -n 10 "$GO" build -trimpath -ldflags "$ldflags" -o "$BIN/.$cmd-$K8S_VERSION.tmp" \
    "k8s.io/kubernetes/cmd/$cmd" >&2
  mv "$BIN/.$cmd-$K8S_VERSION.tmp" "$BIN/$cmd-$K8S_VERSION"
done
echo "kube-apiserver.sh: built kube-apiserver and kubectl $K8S_VERSION in ${SECONDS}s" >&2

echo "$BIN"
