#!/usr/bin/env bash
# Installs Mesa's lavapipe (a Vulkan driver that runs on the CPU) new enough for Dawn, so that the
# WebGPU tests run on machines without a GPU. Debian 12's own Mesa (22.3) is too old for Dawn;
# its backports Mesa (25.x) works. The backports source is derived from the machine's existing
# Debian source, so no mirror address is written here. Needs root; safe to run twice.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "install-cpu-vulkan: needs root" >&2; exit 1; fi
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
src=/etc/apt/sources.list.d/debian.sources
if [ -z "$codename" ] || [ ! -f "$src" ]; then
  echo "install-cpu-vulkan: not a Debian machine with $src; install a Vulkan driver by hand" >&2
  exit 1
fi
uri=$(awk '/^URIs:/ {print $2; exit}' "$src")
if ! grep -qs "Suites: ${codename}-backports" /etc/apt/sources.list.d/*.sources; then
  printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" "$codename" > "/etc/apt/sources.list.d/${codename}-backports.sources"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -t "${codename}-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
echo "install-cpu-vulkan: $(dpkg-query -W -f='${Package} ${Version}\n' mesa-vulkan-drivers)"
