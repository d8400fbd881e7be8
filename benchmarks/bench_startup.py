"""Start-up time with JAX's persistent compilation cache: a cold start (empty cache) against a warm
one (the cache the cold start filled), each in a fresh process.

    python -m benchmarks.bench_startup
    python -m benchmarks.bench_startup --runs=3

The commands turn the cache on (stylegan_jax.utils.enable_compilation_cache). Cases, each timed
inside its process from its first import of JAX:
  - "explorer": open the bundled demo generator and render its first 8 images (what
    `python -m experiments.explore` does before the page can show anything);
  - "train_step": build the demo config's networks and state and compile its train step (what a
    resumed `experiments.train --config=demo` pays before its first step), via bench_train.
Prints a table (medians of --runs cold and warm starts) and one JSON line.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

from absl import app, flags

from stylegan_jax.utils import exit_with_error

FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    "explorer": """
from stylegan_jax.explore import Explorer
from stylegan_jax.explore.model import DEMO_GENERATOR
explorer = Explorer.open(DEMO_GENERATOR)
explorer.synthesize(explorer.w_from_seeds(list(range(8)), psi=0.7))
""",
    "train_step": """
from benchmarks.bench_train import run_case
run_case("demo", 16, 1, "float32", peak=1.0, with_passes=False)
""",
}

# Runs one case in a fresh process with the cache at argv[1]; prints its seconds.
CHILD = """
import sys, time
start = time.perf_counter()
import jax
from stylegan_jax.utils import enable_compilation_cache
enable_compilation_cache(sys.argv[1])
exec(sys.argv[2])
print(time.perf_counter() - start)
"""


def start_seconds(case: str, cache_dir: str) -> float:
    """Seconds one fresh process takes for `case` with the compilation cache in cache_dir."""
    result = subprocess.run([sys.executable, "-c", CHILD, cache_dir, CASES[case]], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu"),
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"case {case} failed: {result.stderr.strip().splitlines()[-1]}")
    return float(result.stdout.split()[-1])


def benchmark(runs: int = 1) -> dict:
    """{case: {"cold_s", "warm_s", "speedup"}}, medians over `runs` fresh caches; prints them."""
    results = {}
    for case in CASES:
        cold, warm = [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(start_seconds(case, cache))
                warm.append(start_seconds(case, cache))
        cold_s, warm_s = statistics.median(cold), statistics.median(warm)
        results[case] = {"cold_s": cold_s, "warm_s": warm_s, "speedup": cold_s / warm_s}
    print(f"{'case':<12}{'cold s':>8}{'warm s':>8}{'speed-up':>10}")
    for case, r in results.items():
        print(f"{case:<12}{r['cold_s']:>8.1f}{r['warm_s']:>8.1f}{r['speedup']:>9.1f}x")
    print(json.dumps({"benchmark": "startup", "runs": runs, "results": results}))
    return results


def define_flags() -> None:
    flags.DEFINE_integer("runs", 1, "cold + warm start pairs per case (medians are reported)",
                         lower_bound=1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        benchmark(FLAGS.runs)
    except (RuntimeError, OSError) as e:
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
