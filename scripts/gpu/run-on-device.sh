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
. scripts/gpu/device-env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 scripts/gpu/torch_anchor.py > "$out/torch.json" 2>&1
echo "torch anchor exit $?"
node dist/cli/main.js bench --backend webgpu --bits 1,2,4,8 --runs 20 --json --report "$out/webgpu.md" --anchor "$out/torch.json" "$@" > "$out/webgpu.json" 2> "$out/webgpu.log"
echo "webgpu bench exit $?" | tee -a "$out/webgpu.log"
cat "$out/webgpu.log" "$out/torch.json"
