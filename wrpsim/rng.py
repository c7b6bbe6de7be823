"""One seed per run, one named random stream per component.

`stream(seed, "arrivals")` always yields the same generator for the same seed and name, and
streams of different names are statistically independent. Components never share a stream, so
changing the router does not perturb arrivals or lengths (common random numbers across runs).
"""

from __future__ import annotations

from zlib import crc32

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """Return the random generator of component `name` for run seed `seed`."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(crc32(name.encode("utf-8")),))
    return np.random.Generator(np.random.PCG64(ss))
