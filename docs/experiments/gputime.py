"""Time GPU work as the AIConfigurator collector does (`device_gemm.py`, `device_sampler.py`):
captured once in a CUDA graph, the graph replayed, the median replay time. Needs PyTorch and
a CUDA GPU."""

from __future__ import annotations

import statistics


def graph_ms(run, replays: int, warmup: int = 1) -> float:
    """Median milliseconds of one replay of a CUDA graph holding `run()` (called `warmup` times
    on a side stream before the capture), over `replays` replays."""
    import torch

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(warmup):
            run()
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, stream=s):
            run()
    torch.cuda.current_stream().wait_stream(s)
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(replays):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    del g
    return statistics.median(times)
