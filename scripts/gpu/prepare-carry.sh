#!/usr/bin/env bash
# Prepares, on this machine, what scripts/gpu/run-on-device.sh needs on a lent GPU machine (which has
# no Node): .device/ (this machine's node, xz-compressed, and the npm package webgpu trimmed to its
# linux-x64 dawn.node) and .gl/ (the Vulkan/GL loader .debs). Both are git-ignored through
# .git/info/exclude; name them and dist/ in the device call's carry list (about 45 MB in all).
set -euo pipefail
cd "$(dirname "$0")/../.."
for d in /.device/ /.gl/; do grep -qxF "$d" .git/info/exclude || echo "$d" >> .git/info/exclude; done
mkdir -p .device/webgpu/dist/linux-x64 .gl /tmp/amd64/partial
cp node_modules/webgpu/index.js node_modules/webgpu/package.json .device/webgpu/
cp node_modules/webgpu/dist/linux-x64/dawn.node .device/webgpu/dist/linux-x64/
xz -T0 -6 -c "$(command -v node)" > .device/node.xz
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .device .gl
