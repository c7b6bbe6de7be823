"""Streaming quality of experience (QoE) of one response, after Andes (Liu et al., 2024).

A user reads a streamed answer at their own pace. The *expected* token delivery timeline of a
response of `n` tokens sent at `arrival` is

    T(t) = 0                                 for t < e,   e = arrival + expected TTFT
    T(t) = min(n, 1 + p·(t − e))             for t >= e,  p = expected pace (tokens/s)

(the first token at the expected TTFT, then `p` tokens per second). The *actual* timeline
A(t) counts the tokens delivered by time t. Tokens that arrive ahead of the reader do not help
(the client buffers them), so the experienced timeline is min(A, T), and

    QoE = ∫ min(A(t), T(t)) dt / ∫ T(t) dt      over [e, t_end],
    t_end = max(actual completion, expected completion e + (n − 1)/p).

QoE is 1 for a stream that stays at or ahead of the expected timeline and falls as tokens come
late — a late first token costs more than a late last one.

A one-token answer (n = 1) has an expected timeline of no length: T steps to 1 at `e` and the
answer is complete, so the window [e, t_end] would be the lateness d itself and any lateness
would give QoE 0 (while two tokens d late give nearly 1). wrpsim scores it over the time the
reader spends on one token, 1/p — the time the definition gives every token of a longer answer
before the next — so t_end = max(actual completion, e + 1/p) for n = 1, and

    QoE = 1 − p·d   for d < 1/p,   0 from d = 1/p on             (n = 1, first token d late),

continuous in d and 1 on time; two tokens delivered together d late give, in the same way,
1 − (2/3)·(p·d + (p·d)²/2), also 0 from d = 1/p on. Longer answers are unchanged.

Between token deliveries wrpsim draws A as a straight line (the decode progress of the
iterations that produce the tokens; the first token is a step from 0 to 1). For a stream whose
first token comes at `e` and that then delivers at a constant rate r < p until all `n` tokens
are out, the definition gives the closed form (`constant_rate_qoe`)

    QoE = (n + 1)·p / (2·n·p − (n − 1)·r)        (→ p / (2p − r) for long answers).

QoE is per call, from the call's own `arrival_s`: a router's follow-up call (a cascade's
escalation) is scored from when the router sent it, not from when its user asked (README,
`qoe`; `docs/routers.md`, "Metrics").

`QoEMeter` integrates the lag ∫ max(0, T − A) piece by piece as a sequence's tokens come out
(so the engine never stores a per-token timeline); QoE = 1 − lag / ∫ T, exactly 1 when the
stream never fell behind.
"""

from __future__ import annotations


def _lin_deficit(u: float, du: float, v: float, dv: float) -> float:
    """∫_u^v max(0, T − A) where T − A is linear on [u, v] with values du, dv."""
    if du <= 0 and dv <= 0:
        return 0.0
    if du >= 0 and dv >= 0:
        return (du + dv) * (v - u) / 2
    x = u + (v - u) * du / (du - dv)  # where the stream crosses the reader
    return du * (x - u) / 2 if du > 0 else dv * (v - x) / 2


def piece_deficit(ta: float, ya: float, tb: float, yb: float, e: float, p: float,
                  n: int) -> float:
    """∫_ta^tb max(0, T − A) for A linear from (ta, ya) to (tb, yb) and T of the module
    docstring: how far the stream lagged its reader over the piece."""
    if tb <= ta or tb <= e:
        return 0.0
    te = e + (n - 1) / p
    slope = (yb - ya) / (tb - ta)
    total = 0.0
    u = e if e > ta else ta  # (max and min written out: a few per token run, per request)
    for v in (te, tb):  # T rises until te, then stays at n
        if tb < v:
            v = tb
        if v <= u:
            continue
        au, av = ya + slope * (u - ta), ya + slope * (v - ta)
        if u < te:
            tu, tv = 1 + p * (u - e), 1 + p * (v - e)
        else:
            tu = tv = float(n)
        total += _lin_deficit(u, tu - au, v, tv - av)
        u = v
    return total


def piece_area(ta: float, ya: float, tb: float, yb: float, e: float, p: float, n: int) -> float:
    """∫_ta^tb min(A, T) (= ∫ T − the deficit) for A linear from (ta, ya) to (tb, yb)."""
    lo = e if e > ta else ta
    if tb <= lo:
        return 0.0
    te = e + (n - 1) / p
    return (_t_integral(lo, tb, e, p, n, te)
            - piece_deficit(ta, ya, tb, yb, e, p, n))


def _t_integral(u: float, v: float, e: float, p: float, n: int, te: float) -> float:
    """∫_u^v T(t) dt for e <= u <= v."""
    total = 0.0
    if u < te:
        w = te if te < v else v
        total += (2 + p * (u - e) + p * (w - e)) * (w - u) / 2
        u = w
    if v > u:
        total += n * (v - u)
    return total


def expected_area(e: float, p: float, n: int, t_end: float) -> float:
    """∫_e^t_end T(t) dt."""
    return _t_integral(e, t_end, e, p, n, e + (n - 1) / p)


def constant_rate_qoe(n: int, p: float, r: float) -> float:
    """Closed-form QoE of a stream on time at `e` that then delivers `r` <= `p` tokens/s."""
    return (n + 1) * p / (2 * n * p - (n - 1) * r)


class QoEMeter:
    """Accumulates ∫ min(A, T) for one response while its tokens come out (module docstring).

    `advance(t, y)`: A was flat at its current level until `t`, then became `y` (a jump, e.g.
    the first token). `line(t, y)`: A rose linearly from its current point to (t, y).
    `ahead(t, y)`: A stayed at or above T until `t` (the caller knows), then is `y`.
    `finish(t)`: all `n` tokens are out at `t`; returns the QoE.
    """

    __slots__ = ("deficit", "e", "n", "p", "t", "y")

    def __init__(self, arrival_s: float, ttft_s: float, pace: float, n: int):
        self.e = arrival_s + ttft_s
        self.p = pace
        self.n = n
        self.t = arrival_s
        self.y = 0.0
        self.deficit = 0.0  # ∫ max(0, T − A) so far

    def advance(self, t: float, y: float) -> None:
        """Flat at the current level until `t`, then level `y`."""
        if t > self.t:
            self.deficit += piece_deficit(self.t, self.y, t, self.y, self.e, self.p, self.n)
            self.t = t
        self.y = y

    def line(self, t: float, y: float) -> None:
        """Linear from the current point to (t, y)."""
        if t > self.t:
            self.deficit += piece_deficit(self.t, self.y, t, y, self.e, self.p, self.n)
            self.t = t
        self.y = y

    def ahead(self, t: float, y: float) -> None:
        """A stays at or above T from the current point until `t` (then it is `y`)."""
        if t > self.t:  # no deficit
            self.t = t
        self.y = y

    def finish(self, t: float) -> float:
        """QoE of the response whose last token came at `t`."""
        self.advance(t, float(self.n))  # A = n from here on: no more deficit
        if self.deficit <= 0:
            return 1.0
        t_exp = self.e + (self.n - 1 if self.n > 1 else 1) / self.p  # n = 1: module docstring
        s_exp = expected_area(self.e, self.p, self.n, t_exp if t_exp > t else t)
        q = 1.0 - self.deficit / s_exp
        return q if q > 0.0 else 0.0
