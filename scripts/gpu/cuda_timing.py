"""CUDA-event timing shared by the PyTorch anchors (torch_anchor.py, torch_models.py)."""
import torch


def timed(fn, reps=50):
    """Median milliseconds of `reps` calls of fn, each between two CUDA events, after 5 warm-up calls."""
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]
