#!/usr/bin/env bash
# UserFlow on a local kind cluster: the cluster, Strimzi, ingress-nginx,
# kube-prometheus-stack (and KEDA with --keda), our images, the chart, a sample
# Company, and the curl that sends it an event. Each step is explained in
# deploy/kind/README.md. Needs docker, kind, kubectl and helm.
#   deploy/kind/up.sh [--keda]
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER="${CLUSTER:-userflow}"
NAMESPACE="${NAMESPACE:-userflow}"
TAG="${TAG:-dev}"
STRIMZI_VERSION="${STRIMZI_VERSION:-1.2.0}"   # any release >= 0.49 serves kafka.strimzi.io/v1
KEDA=false
for arg in "$@"; do
  case "$arg" in
    --keda) KEDA=true ;;
    *) echo "usage: $0 [--keda]" >&2; exit 2 ;;
  esac
done
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "up.sh: $tool is required" >&2; exit 1; }
done
step() { printf '\n==> %s\n' "$*"; }

step "1. kind cluster $CLUSTER"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --config deploy/kind/kind-config.yaml
fi
kubectl config use-context "kind-$CLUSTER"

step "2. Strimzi $STRIMZI_VERSION (watches every namespace)"
helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --version "$STRIMZI_VERSION" --namespace strimzi --create-namespace \
  --set watchAnyNamespace=true --wait

step "3. ingress-nginx on the ingress-ready node's ports 80/443"
helm upgrade --install ingress-nginx ingress-nginx \
  --repo https://kubernetes.github.io/ingress-nginx --namespace ingress-nginx --create-namespace \
  --set controller.hostPort.enabled=true --set controller.service.type=NodePort \
  --set-string controller.nodeSelector.ingress-ready=true \
  --set 'controller.tolerations[0].key=node-role.kubernetes.io/control-plane' \
  --set 'controller.tolerations[0].operator=Exists' \
  --set 'controller.tolerations[0].effect=NoSchedule' --wait

step "4. kube-prometheus-stack (Prometheus Operator, Prometheus, Grafana)"
helm upgrade --install kps kube-prometheus-stack \
  --repo https://prometheus-community.github.io/helm-charts --namespace monitoring --create-namespace \
  --set alertmanager.enabled=false \
  --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
  --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
  --set grafana.sidecar.dashboards.searchNamespace=ALL \
  --set grafana.envValueFrom.USERFLOW_DASHBOARDS_PASSWORD.secretKeyRef.name=userflow-grafana-datasource \
  --set grafana.envValueFrom.USERFLOW_DASHBOARDS_PASSWORD.secretKeyRef.key=USERFLOW_DASHBOARDS_PASSWORD \
  --set grafana.envValueFrom.USERFLOW_DASHBOARDS_PASSWORD.secretKeyRef.optional=true --wait

# Extra chart flags; expanded as ${a[@]+"${a[@]}"} because bash < 4.4 (macOS's
# /bin/bash 3.2) treats an empty array as unset under `set -u`.
chart_args=()
if [ "$KEDA" = true ]; then
  step "4b. KEDA"
  helm upgrade --install keda keda --repo https://kedacore.github.io/charts \
    --namespace keda --create-namespace --wait
  chart_args+=(--set consumer.autoscaling.mode=keda)
fi

step "5. images userflow:$TAG and userflow-postgres:15, loaded into the cluster"
docker build -t "userflow:$TAG" .
docker build -t userflow-postgres:15 deploy/helm/userflow/images/postgres
kind load docker-image --name "$CLUSTER" "userflow:$TAG" userflow-postgres:15

step "6. helm install userflow (the migration Job runs once PostgreSQL answers)"
# The dashboards, their data source and its password Secret go where Grafana runs.
helm upgrade --install userflow deploy/helm/userflow --namespace "$NAMESPACE" --create-namespace \
  --set image.tag="$TAG" --set image.pullPolicy=Never \
  --set postgresql.statefulset.image.pullPolicy=Never \
  --set metrics.dashboards.namespace=monitoring \
  ${chart_args[@]+"${chart_args[@]}"} --timeout 20m
# Grafana started before that Secret existed: it reads the password at start.
kubectl -n monitoring rollout restart deployment/kps-grafana

step "7. waiting for Kafka and the UserFlow Deployments"
kubectl -n "$NAMESPACE" wait kafka --all --for=condition=Ready --timeout=15m
kubectl -n "$NAMESPACE" wait deployment -l app.kubernetes.io/instance=userflow \
  --for=condition=Available --timeout=10m

step "8. sample Company acme"
kubectl apply -f deploy/kind/sample-company.yaml
kubectl -n default wait company/acme --for=condition=Ready --timeout=5m
secret="$(kubectl -n default get company acme -o jsonpath='{.status.secretName}')"
key="$(kubectl -n default get secret "$secret" -o jsonpath='{.data.writeKey}' | base64 -d)"

step "9. ready"
cat <<MSG
write key of acme (Secret default/$secret): $key

Send an event through the ingress:
  curl -u '$key:' -H 'Content-Type: application/json' http://localhost/v1/track \\
    -d '{"userId":"42","event":"click","properties":{"selector":"#buy"},"context":{"sessionId":"s-1","page":{"url":"https://shop.acme.example/"}}}'

Grafana: kubectl -n monitoring port-forward svc/kps-grafana 3000:80  (dashboards "UserFlow / Pipeline
throughput", "UserFlow / Product overview", "UserFlow / UX deep dive"; pick the tenant acme)
MSG
