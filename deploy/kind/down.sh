#!/usr/bin/env bash
# Deletes the kind cluster made by up.sh, and everything in it.
set -euo pipefail
CLUSTER="${CLUSTER:-userflow}"
kind delete cluster --name "$CLUSTER"
