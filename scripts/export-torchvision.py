#!/usr/bin/python3
"""Exports torchvision architectures (random weights: no downloads) to ONNX with dynamic sizes.

usage: /usr/bin/python3 scripts/export-torchvision.py OUTDIR [NAME ...]
Each model is written as OUTDIR/NAME.onnx with dynamic batch (and height/width where the
architecture allows), opset 13; a list of what was written goes to OUTDIR/models.json.
"""
import json
import os
import sys

import torch
import torchvision.models as tvm
import torchvision.models.segmentation as seg

# name -> (constructor, input size, dynamic spatial sizes, output names)
MODELS = {
    'resnet18': (lambda: tvm.resnet18(), 224, True, ['logits']),
    'mobilenet_v2': (lambda: tvm.mobilenet_v2(), 224, True, ['logits']),
    'mobilenet_v3_small': (lambda: tvm.mobilenet_v3_small(), 224, True, ['logits']),
    'shufflenet_v2_x1_0': (lambda: tvm.shufflenet_v2_x1_0(), 224, True, ['logits']),
    'squeezenet1_1': (lambda: tvm.squeezenet1_1(), 224, True, ['logits']),
    'googlenet': (lambda: tvm.googlenet(aux_logits=False, init_weights=True), 224, True, ['logits']),
    'densenet121': (lambda: tvm.densenet121(), 224, True, ['logits']),
    'regnet_y_400mf': (lambda: tvm.regnet_y_400mf(), 224, True, ['logits']),
    'efficientnet_b0': (lambda: tvm.efficientnet_b0(), 224, True, ['logits']),
    'mnasnet0_5': (lambda: tvm.mnasnet0_5(), 224, True, ['logits']),
    'convnext_tiny': (lambda: tvm.convnext_tiny(), 224, True, ['logits']),
    'resnext50_32x4d': (lambda: tvm.resnext50_32x4d(), 224, True, ['logits']),
    'alexnet': (lambda: tvm.alexnet(), 224, False, ['logits']),
    'inception_v3': (lambda: tvm.inception_v3(aux_logits=False, init_weights=True), 299, False, ['logits']),
    'lraspp_mobilenet_v3_large': (lambda: seg.lraspp_mobilenet_v3_large(weights_backbone=None), 224, True, ['out']),
    'deeplabv3_mobilenet_v3_large': (lambda: seg.deeplabv3_mobilenet_v3_large(weights_backbone=None, aux_loss=True), 224, True, ['out', 'aux']),
    # A vision transformer (shifted windows: LayerNorm, attention MatMuls, Softmax, GELU).
    'swin_t': (lambda: tvm.swin_t(), 224, False, ['logits']),
    # Multi-axis attention over blocks and grids, with MBConv stages.
    'maxvit_t': (lambda: tvm.maxvit_t(), 224, False, ['logits']),
    'mobilenet_v3_large': (lambda: tvm.mobilenet_v3_large(), 224, True, ['logits']),
    'regnet_x_400mf': (lambda: tvm.regnet_x_400mf(), 224, True, ['logits']),
    'efficientnet_v2_s': (lambda: tvm.efficientnet_v2_s(), 224, True, ['logits']),
}


class Outputs(torch.nn.Module):
    """Segmentation models return a dict: exported as a tuple of its tensors, in order."""

    def __init__(self, inner, names):
        super().__init__()
        self.inner, self.names = inner, names

    def forward(self, x):
        y = self.inner(x)
        return tuple(y[n] for n in self.names) if isinstance(y, dict) else y


def main():
    out, names = sys.argv[1], sys.argv[2:] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    written = []
    for name in names:
        make, size, spatial, outputs = MODELS[name]
        model = Outputs(make().eval(), outputs)
        # BatchNorm statistics as if trained: random running means and variances, so that folding is exercised.
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.1, 0.1)
        x = torch.randn(1, 3, size, size)
        axes = {0: 'batch', 2: 'height', 3: 'width'} if spatial else {0: 'batch'}
        dyn = {'input': axes, **{o: {0: 'batch'} for o in outputs}}
        path = os.path.join(out, f'{name}.onnx')
        torch.onnx.export(model, x, path, opset_version=13, input_names=['input'], output_names=outputs, dynamic_axes=dyn, do_constant_folding=True)
        written.append({'name': name, 'file': f'{name}.onnx', 'size': size, 'dynamicSpatial': spatial, 'outputs': outputs})
        print(f'exported {name} ({os.path.getsize(path) / 1e6:.1f} MB)', flush=True)
    with open(os.path.join(out, 'models.json'), 'w') as f:
        json.dump(written, f, indent=1)


if __name__ == '__main__':
    main()
