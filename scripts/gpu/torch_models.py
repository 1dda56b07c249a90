"""PyTorch on whole models, the anchor of faster-cnn's WebGPU model bench (src/bench/webgpu-models.ts):
MobileNetV2, ResNet-18 and ResNeXt-50 (32x4d) at batch 1 and 16, float32 and float16 (channels-last),
CUDA events, median of 30 after warm-up. Each model is also exported to ONNX (batch as a named size)
into the folder given as the first argument, so that faster-cnn runs the same architecture and weights.
torchvision's definitions where it is installed; otherwise the same architectures written out here.
Prints one JSON line per figure."""
import json
import os
import sys

import torch

from cuda_timing import timed
import torch.nn as nn

torch.backends.cudnn.benchmark = True
out_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/gpu-models"
os.makedirs(out_dir, exist_ok=True)


def conv_bn(cin, cout, k, s=1, groups=1, act=True, relu6=False):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True) if relu6 else nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, s, t):
        super().__init__()
        hidden = cin * t
        layers = [conv_bn(cin, hidden, 1, relu6=True)] if t != 1 else []
        layers += [conv_bn(hidden, hidden, 3, s, groups=hidden, relu6=True), conv_bn(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.res = s == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.res else self.conv(x)


def mobilenet_v2():
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    layers, cin = [conv_bn(3, 32, 3, 2, relu6=True)], 32
    for t, c, n, s in cfg:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers.append(conv_bn(cin, 1280, 1, relu6=True))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, 1000))


class Block(nn.Module):
    def __init__(self, cin, planes, s, bottleneck, groups=1, width_per_group=64):
        super().__init__()
        if bottleneck:
            width = int(planes * width_per_group / 64) * groups
            self.body = nn.Sequential(conv_bn(cin, width, 1), conv_bn(width, width, 3, s, groups=groups), conv_bn(width, planes * 4, 1, act=False))
            cout = planes * 4
        else:
            self.body = nn.Sequential(conv_bn(cin, planes, 3, s), conv_bn(planes, planes, 3, act=False))
            cout = planes
        self.down = conv_bn(cin, cout, 1, s, act=False) if s != 1 or cin != cout else nn.Identity()
        self.cout = cout

    def forward(self, x):
        return torch.relu(self.body(x) + self.down(x))


def resnet(blocks, bottleneck, groups=1, width_per_group=64):
    layers, cin = [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)], 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks)):
        for j in range(n):
            b = Block(cin, planes, 2 if i > 0 and j == 0 else 1, bottleneck, groups, width_per_group)
            layers.append(b)
            cin = b.cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000))


def build(name):
    try:
        import torchvision.models as tv
        return getattr(tv, name)(), "torchvision"
    except Exception:  # noqa: BLE001 - no torchvision: the architectures written out above
        return {"mobilenet_v2": mobilenet_v2, "resnet18": lambda: resnet((2, 2, 2, 2), False),
                "resnext50_32x4d": lambda: resnet((3, 4, 6, 3), True, 32, 4)}[name](), "written out in torch_models.py"


device = torch.cuda.get_device_name()
print(json.dumps({"torch": torch.__version__, "device": device}), flush=True)
for name in ("mobilenet_v2", "resnet18", "resnext50_32x4d"):
    torch.manual_seed(0)
    model, source = build(name)
    model.eval()
    path = os.path.join(out_dir, f"{name}.onnx")
    try:
        kw = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
        torch.onnx.export(model, torch.zeros(1, 3, 224, 224), path, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13, **kw)
        print(json.dumps({"model": name, "onnx": path, "source": source}), flush=True)
    except Exception as e:  # noqa: BLE001 - report, keep the timings
        print(json.dumps({"model": name, "onnxError": str(e)[:300], "source": source}), flush=True)
    for batch in (1, 16):
        x = torch.rand(batch, 3, 224, 224, device="cuda")
        for dtype, fmt in ((torch.float32, torch.contiguous_format), (torch.float16, torch.channels_last)):
            m = model.to("cuda", dtype).to(memory_format=fmt)
            xi = x.to(dtype).contiguous(memory_format=fmt)
            with torch.no_grad():
                ms = timed(lambda: m(xi), 30)
            print(json.dumps({"model": name, "impl": f"torch-{str(dtype).split('.')[-1]}{'-channels-last' if fmt is torch.channels_last else ''}",
                              "batch": batch, "device": device, "medianMs": ms}), flush=True)
        model = model.to("cpu", torch.float32).to(memory_format=torch.contiguous_format)
