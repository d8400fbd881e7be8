"""The benchmarks' one timing rule: one warm-up call (compiles, allocates), then the median."""
import statistics
import time
from typing import Callable


def median_seconds(call: Callable[[int], object], repeats: int) -> float:
    """Median wall time of call(1) .. call(repeats), after an untimed call(0).

    `call` gets the call's index, so a benchmark can vary its input (e.g. a slider's amount)
    and keep any cache from answering; callers that do not need it ignore the argument.
    """
    call(0)
    times = []
    for i in range(1, repeats + 1):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def alternating_median_seconds(call: Callable[[int], object], other: Callable[[int], object],
                               repeats: int) -> float:
    """median_seconds of call, with other(i) run (untimed here) before each call(i), warm-up
    included: two programs measured turn about, so a changing machine load hits both alike."""
    def timed(i):
        other(i)
        start = time.perf_counter()
        call(i)
        return time.perf_counter() - start
    timed(0)
    return statistics.median(timed(i) for i in range(1, repeats + 1))
