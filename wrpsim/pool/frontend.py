"""An engine's API server as its requests meet it: a fixed latency plus serial per-token work.

Before the engine core sees a request, the serving engine's API server handles it: HTTP, the
hops between processes and the first token's way back (a fixed latency that overlaps across
requests), and tokenizing the prompt (CPU work proportional to its tokens). vLLM runs one API
server process per deployment (`--api-server-count 1`) and tokenizes one prompt at a time in
it, so that work queues: a burst of prompts — the first wave of a closed-loop benchmark, a
traffic spike — waits for the prompts ahead of it. `FrontEnd` is that single-server FIFO queue
(a Lindley recursion on `free_at`), with the amounts from `LatencyModel.frontend_s` (total) and
`LatencyModel.frontend_work_s` (the queued part).

The same process also detokenizes and streams every output token of every running request
(`LatencyModel.frontend_stream_s` CPU seconds each). At an output rate of r tokens/s that
takes a share rho = r x frontend_stream_s of its CPU, and a new request's handling, which
shares the CPU with it, is stretched by 1 / (1 - rho) (processor sharing; rho capped at
`RHO_MAX`): the front end slows as load grows, which a fixed latency cannot show. r is the
instance's output rate when the request arrives (decoding sequences / step time).

A prompt longer than the instance's context (`max_context`) is refused once tokenized (drop
reason `context`); the dispatcher charges its tokenization for at most `max_context` + 1
tokens, so a nonsense length in a trace cannot hold the server for centuries.
"""

from __future__ import annotations

#: the largest API-server share taken by streaming (beyond it the server cannot keep up and
#: the engine, not the front end, sets the pace)
RHO_MAX = 0.9


class FrontEnd:
    """One instance's API server (see module docstring)."""

    __slots__ = ("free_at", "latency")

    def __init__(self, latency):
        self.latency = latency
        self.free_at = 0.0  # when the server's tokenizer is next idle

    def delay_s(self, now: float, prompt_tokens: int, stream_rate: float = 0.0) -> float:
        """Seconds from `now` until the engine sees a prompt of `prompt_tokens` that reaches
        the API server at `now`: the fixed latency plus its tokenization, after the work of
        every prompt that reached the server before it (calls must come in time order), both
        stretched by the streaming load of `stream_rate` output tokens/s (module docstring)."""
        lat = self.latency
        total = lat.frontend_s(prompt_tokens)
        work = lat.frontend_work_s(prompt_tokens)
        if stream_rate > 0.0:
            rho = stream_rate * lat.frontend_stream_s()
            if rho > 0.0:
                stretch = 1.0 / (1.0 - (rho if rho < RHO_MAX else RHO_MAX))
                total *= stretch
                work *= stretch
        if work <= 0.0:
            return total
        start = now if now > self.free_at else self.free_at
        self.free_at = start + work
        return total - work + (self.free_at - now)
