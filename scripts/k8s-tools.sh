#!/usr/bin/env bash
# Builds the Kubernetes test tools once, from the Go module proxy, into a cache
# outside the repository, and prints that bin directory:
#   helm        helm.sh/helm/v3/cmd/helm               (chart lint and template)
#   kubeconform github.com/yannh/kubeconform/cmd/...   (offline schema validation)
# A second run (or CI on the same machine) finds them there and builds nothing.
# Usage: bash scripts/k8s-tools.sh            -> prints the bin dir
# Env:   XDG_CACHE_HOME, GO (the go binary), HELM_VERSION, KUBECONFORM_VERSION
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.8.0}"
# helm's own Makefile derives the default Kubernetes version (used by
# `helm lint` and when --kube-version is not given) from its client-go module:
# client-go v0.37.x -> Kubernetes 1.37.
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=37

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/userflow"
BIN="$CACHE/bin"
mkdir -p "$BIN"

GO="${GO:-$(command -v go || true)}"
[ -n "$GO" ] || GO=/usr/local/go/bin/go

# Two runs at once (make test and CI) must not build into the same place.
exec 9>"$CACHE/.k8s-tools.lock"
flock 9

need_go() {
  if ! [ -x "$GO" ] && ! command -v "$GO" >/dev/null 2>&1; then
    echo "k8s-tools: no go toolchain at '$GO' (set GO, or put go on PATH; the fallback is /usr/local/go/bin/go)" >&2
    exit 1
  fi
}

# Each tool is installed with a stamp naming its version; a changed version rebuilds.
if ! [ -x "$BIN/helm" ] || ! [ -f "$BIN/.helm-$HELM_VERSION" ]; then
  need_go
  echo "k8s-tools: building helm $HELM_VERSION (a few minutes, once)" >&2
  pkg="helm.sh/helm/v3"
  GOBIN="$BIN" CGO_ENABLED=0 "$GO" install -trimpath -ldflags "-s -w \
    -X $pkg/internal/version.version=$HELM_VERSION \
    -X $pkg/internal/version.gitTreeState=clean \
    -X $pkg/pkg/lint/rules.k8sVersionMajor=$HELM_K8S_MAJOR \
    -X $pkg/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR \
    -X $pkg/pkg/chartutil.k8sVersionMajor=$HELM_K8S_MAJOR \
    -X $pkg/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR" \
    "$pkg/cmd/helm@$HELM_VERSION" >&2
  rm -f "$BIN"/.helm-*
  touch "$BIN/.helm-$HELM_VERSION"
fi

if ! [ -x "$BIN/kubeconform" ] || ! [ -f "$BIN/.kubeconform-$KUBECONFORM_VERSION" ]; then
  need_go
  echo "k8s-tools: building kubeconform $KUBECONFORM_VERSION (once)" >&2
  GOBIN="$BIN" CGO_ENABLED=0 "$GO" install -trimpath -ldflags "-s -w -X main.version=$KUBECONFORM_VERSION" \
    "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" >&2
  rm -f "$BIN"/.kubeconform-*
  touch "$BIN/.kubeconform-$KUBECONFORM_VERSION"
fi

echo "$BIN"
