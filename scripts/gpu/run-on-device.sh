#!/usr/bin/env bash
# Runs the WebGPU benchmark and the PyTorch anchor on a lent GPU machine (see docs/perf-notes.md).
# That machine has no Node: the caller carries, in the ignored folder .device/, an xz-compressed
# node binary (node.xz) and the npm package webgpu trimmed to its linux-x64 dawn.node (webgpu/),
# the Vulkan loader .debs in .gl/ (scripts/gpu/prepare-carry.sh makes both) and the built dist/.
# Arguments go to the bench (e.g. --sweep). Results go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
for f in .gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f $icd ]; then export VK_DRIVER_FILES=$icd; fi
if ! command -v node >/dev/null; then
  mkdir -p /tmp/nodebin && xz -dc .device/node.xz > /tmp/nodebin/node && chmod +x /tmp/nodebin/node
  export PATH=/tmp/nodebin:$PATH
fi
if [ ! -e node_modules/webgpu ]; then mkdir -p node_modules && cp -r .device/webgpu node_modules/; fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 scripts/gpu/torch_anchor.py > "$out/torch.json" 2>&1
echo "torch anchor exit $?"
node dist/cli/main.js bench --backend webgpu --bits 1,2,4,8 --runs 20 --json --report "$out/webgpu.md" --anchor "$out/torch.json" "$@" > "$out/webgpu.json" 2> "$out/webgpu.log"
echo "webgpu bench exit $?" | tee -a "$out/webgpu.log"
cat "$out/webgpu.log" "$out/torch.json"
