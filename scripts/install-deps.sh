#!/usr/bin/env bash
# Installs the Debian 12 packages recfuse needs to build and test (curl
# and jq drive the server tests); with --bench also what only `make bench`
# needs (wrk and nginx-light for the server benchmark).
# Only installs what is missing; needs root (or sudo) when something is.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libsqlite3-dev sqlite3 libjansson-dev
      zlib1g-dev libcmocka-dev libopenblas-dev liblapacke-dev
      libmicrohttpd-dev curl jq)
bench_pkgs=(wrk nginx-light)
[ "${1:-}" = --bench ] && pkgs+=("${bench_pkgs[@]}")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
