#!/usr/bin/env bash
# Installs the Debian 12 packages orchestratord needs to build, test and run its demo.
# It is a no-op when everything is present, runs `apt-get update` at most once, and
# when not run as root prints the exact command an administrator should run instead.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang-format ccache
  libpq-dev
  libboost1.81-dev
  libyaml-cpp-dev
  libspdlog-dev libfmt-dev
  catch2
  prometheus-cpp-dev
  libsystemd-dev
  libcli11-dev
  nlohmann-json3-dev
  postgresql-15 postgresql-client-15
  python3 bc
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "install-deps: missing packages: ${missing[*]}"
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; run as root:"
  echo "  apt-get update && $cmd"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
# postgresql-common would otherwise create and start a default cluster on install;
# orchestratord's scripts start their own private clusters instead.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
  echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf
fi
$cmd
