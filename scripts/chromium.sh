#!/usr/bin/env bash
# The browser tests' Chromium: Debian's package, installed with apt-get when
# /usr/bin/chromium is missing (never a browser a tool downloads itself).
# Prints the binary's path (last line). A second run installs nothing.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/userflow"
mkdir -p "$CACHE"
exec 9>"$CACHE/.chromium.lock"
flock 9

if ! [ -x "$CHROMIUM" ]; then
  echo "chromium.sh: installing chromium from apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  sudo_=""
  [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get install -y -q --no-install-recommends chromium >&2 \
    || { $sudo_ apt-get update -q >&2 && $sudo_ apt-get install -y -q --no-install-recommends chromium >&2; }
fi
echo "$CHROMIUM"
