#!/usr/bin/env bash
# Whole models on a lent GPU: PyTorch (scripts/gpu/torch_models.py: MobileNetV2, ResNet-18, ResNeXt-50 at
# batch 1 and 16, fp32 and fp16, each also exported to ONNX) and faster-cnn's WebGPU runtime on those
# exports and on nsfwjs's MobileNetV2 (carried in .device/models/), in one call on the same card.
# Carry .device, .gl and dist (scripts/gpu/prepare-carry.sh; copy nsfwjs's mobilenet_v2 model folder to
# .device/models/nsfwjs-mobilenet_v2 with a package.json of {"type":"commonjs"}). Results go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out" /tmp/models
. scripts/gpu/device-env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 scripts/gpu/torch_models.py /tmp/models > "$out/torch-models.json" 2> "$out/torch-models.log"
echo "torch models exit $?"
cat "$out/torch-models.json"; tail -5 "$out/torch-models.log"
models=(.device/models/nsfwjs-mobilenet_v2/model.min.js)
for m in mobilenet_v2 resnet18 resnext50_32x4d; do [ -f /tmp/models/$m.onnx ] && models+=(/tmp/models/$m.onnx); done
node dist/cli/main.js bench-webgpu-models "${models[@]}" --batch 1,16 --bits 0,8 --runs "${RUNS:-20}" --anchor "$out/torch-models.json" \
  --report "$out/webgpu-models.md" --json > "$out/webgpu-models.json" 2> "$out/webgpu-models.log"
echo "webgpu models exit $?" | tee -a "$out/webgpu-models.log"
grep -v '^Warning' "$out/webgpu-models.log" | tail -20
cat "$out/webgpu-models.md"
