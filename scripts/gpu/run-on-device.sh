#!/usr/bin/env bash
# Runs the WebGPU benchmark and the PyTorch anchor on a lent GPU machine (see docs/perf-notes.md).
# That machine has no Node: the caller carries, in the ignored folder .device/, an xz-compressed
# node binary (node.xz) and the Vulkan loader .debs (.gl/, as the device README describes); the
# repository's node_modules/webgpu brings dawn.node. Results go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
for f in .gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
if ! command -v node >/dev/null; then
  mkdir -p /tmp/nodebin && xz -dc .device/node.xz > /tmp/nodebin/node && chmod +x /tmp/nodebin/node
  export PATH=/tmp/nodebin:$PATH
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
node dist/cli/main.js bench --backend webgpu --bits 1,2,4,8 --runs 20 --json > "$out/webgpu.json" 2> "$out/webgpu.log"
echo "webgpu bench exit $?" | tee -a "$out/webgpu.log"
python3 scripts/gpu/torch_anchor.py > "$out/torch.json" 2>&1
echo "torch anchor exit $?"
cat "$out/webgpu.log" "$out/torch.json"
