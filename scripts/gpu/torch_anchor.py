"""PyTorch's conv2d on the seed layer (1x64x224x224 -> 128, 3x3, pad 1): the anchor the WebGPU
kernels are compared with on a real GPU. Prints one JSON line per precision."""
import json
import torch

from cuda_timing import timed

torch.backends.cudnn.benchmark = True

x = torch.randint(0, 16, (1, 64, 224, 224), device="cuda")
w = torch.randint(-127, 128, (128, 64, 3, 3), device="cuda")


name = torch.cuda.get_device_name()
for dtype in (torch.float32, torch.float16):
    xf, wf = x.to(dtype), w.to(dtype)
    for layout in ("nchw", "nhwc"):
        fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
        xl, wl = xf.contiguous(memory_format=fmt), wf.contiguous(memory_format=fmt)
        ms = timed(lambda: torch.nn.functional.conv2d(xl, wl, padding=1))
        print(json.dumps({"impl": f"torch-conv2d-{str(dtype).split('.')[-1]}-{layout}", "device": name, "medianMs": ms}))
try:
    # int8 through cuDNN is not exposed by conv2d; torch._int_mm covers the im2col product instead.
    cols = torch.nn.functional.unfold(x.to(torch.float16), 3, padding=1).to(torch.int8)[0].t().contiguous()
    w8 = w.reshape(128, -1).t().contiguous().to(torch.int8)
    ms = timed(lambda: torch._int_mm(cols, w8))
    print(json.dumps({"impl": "torch-int8-im2col-matmul", "device": name, "medianMs": ms}))
except Exception as e:  # noqa: BLE001 - report what this torch build lacks, keep the other figures
    print(json.dumps({"impl": "torch-int8-im2col-matmul", "device": name, "error": str(e)}))
