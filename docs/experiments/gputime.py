"""GPU work captured in a CUDA graph (`graph_of`, also replayed for power in
`device_power.py`) and timed as the AIConfigurator collector does (`graph_ms`: the graph
replayed, the median replay time; `device_gemm.py`, `device_sampler.py`). Needs PyTorch and a
CUDA GPU."""

from __future__ import annotations

import statistics


def graph_of(run, warmup: int = 1):
    """`run()` (CUDA work) captured in one CUDA graph, after `warmup` calls on a side stream."""
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
    torch.cuda.synchronize()
    return g


def graph_ms(run, replays: int, warmup: int = 1) -> float:
    """Median milliseconds of one replay of a CUDA graph holding `run()` (`graph_of`), over
    `replays` replays after one untimed replay."""
    import torch

    g = graph_of(run, warmup)
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
