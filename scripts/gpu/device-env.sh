# Sourced by the scripts that run on a lent GPU machine (which has no Node): unpacks the Vulkan loader
# .debs from .gl/, points Vulkan at NVIDIA's driver, puts the carried node (.device/node.xz) on PATH and
# the trimmed npm package webgpu (.device/webgpu) in node_modules. scripts/gpu/prepare-carry.sh makes both.
for f in .gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f $icd ]; then export VK_DRIVER_FILES=$icd; fi
if ! command -v node >/dev/null; then
  mkdir -p /tmp/nodebin && xz -dc .device/node.xz > /tmp/nodebin/node && chmod +x /tmp/nodebin/node
  export PATH=/tmp/nodebin:$PATH
fi
if [ ! -e node_modules/webgpu ]; then mkdir -p node_modules && cp -r .device/webgpu node_modules/; fi
