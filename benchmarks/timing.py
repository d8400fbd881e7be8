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
