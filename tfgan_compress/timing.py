"""Wall-clock latency of a call: the one timing loop behind every latency figure."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np


def latency_ms(call: Callable[[], object], runs: int, warmup: int) -> dict:
    """``call()`` ``warmup`` times untimed, then ``runs`` times timed one by one:
    ``{"median": ms, "p90": ms}``."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median": statistics.median(times), "p90": float(np.percentile(times, 90))}
