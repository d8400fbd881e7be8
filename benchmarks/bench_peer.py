"""This project's train step against rosinality/style-based-gan-pytorch's iteration, same machine.

    python -m benchmarks.bench_peer --peer_path=/path/to/style-based-gan-pytorch \
        --peer_python=/path/to/venv-with-torch/bin/python --resolutions=32,64 --batch=16 --repeats=3

The peer's code is read at run time from --peer_path (never copied here) by
benchmarks/peer_torch_step.py, run with --peer_python (torch is needed there only, not in
requirements.txt). Per resolution, the peer's iteration (D with R1 by create_graph, D on fakes,
G step with mixing, fully faded in) and this project's step (bench_train.run_case on
"paper@RESxRES": the same work) run turn about, one each per round, after one warm-up each, so
load changes hit both; each side's time is its median. Prints a table (peer s/iter, ours s/iter,
ratio peer/ours: above 1 means this project is faster; our fraction of the run's matmul peak)
and one JSON line.
"""
import json
import os
import statistics
import subprocess
import sys

import jax
from absl import app, flags

from benchmarks.bench_train import matmul_peak_flops, run_case
from stylegan_jax.utils import exit_with_error

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_torch_step.py")
FLAGS = flags.FLAGS


def check_peer(peer_path: str, peer_python: str) -> None:
    """One-line errors for a missing peer checkout or interpreter."""
    if not os.path.isfile(os.path.join(peer_path or "", "model.py")):
        raise ValueError(f"--peer_path={peer_path!r} has no model.py: give a checkout of "
                         "rosinality/style-based-gan-pytorch")
    if not (peer_python and os.access(peer_python, os.X_OK)):
        raise ValueError(f"--peer_python={peer_python!r} is not an executable: give a Python "
                         "with torch installed (e.g. a venv's bin/python)")


class Peer:
    """The driver subprocess: iterate() runs one peer iteration and records its seconds."""

    def __init__(self, peer_python: str, peer_path: str, resolution: int, batch: int):
        self.proc = subprocess.Popen([peer_python, DRIVER, peer_path, str(resolution), str(batch)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.banner = self.proc.stdout.readline().strip()
        if not self.banner.startswith("ready"):
            raise OSError(f"the peer driver did not start ({peer_python} {DRIVER}): {self.banner!r}")
        self.seconds = []

    def iterate(self, i: int) -> None:
        self.proc.stdin.write("step\n")
        self.proc.stdin.flush()
        wall, _ = (float(v) for v in self.proc.stdout.readline().split())
        if i > 0:  # 0 is the warm-up
            self.seconds.append(wall)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def benchmark(peer_path: str, peer_python: str, resolutions=(32, 64), batch: int = 16,
              repeats: int = 3) -> None:
    check_peer(peer_path, peer_python)
    peak = matmul_peak_flops()
    print(f"matmul peak (4096^3 float32): {peak / 1e9:.1f} GFLOP/s   load: {os.getloadavg()}")
    print(f"{'res':>6}{'peer s/iter':>13}{'ours s/iter':>13}{'peer/ours':>11}{'ours of peak':>14}")
    rows = []
    for res in resolutions:
        peer = Peer(peer_python, peer_path, res, batch)
        try:
            ours = run_case(f"paper@{res}x{res}", batch, repeats, "float32", peak, False,
                            before_step=peer.iterate)
        finally:
            peer.close()
        peer_s, ours_s = statistics.median(peer.seconds), ours["step_ms"] / 1000
        rows.append({"resolution": res, "batch": batch, "peer_s": peer_s, "ours_s": ours_s,
                     "ratio": peer_s / ours_s, "fraction_of_peak": ours["fraction_of_peak"],
                     "peer_seconds": peer.seconds, "peer": peer.banner, "ours": ours})
        print(f"{res:>6}{peer_s:>13.2f}{ours_s:>13.2f}{peer_s / ours_s:>11.2f}"
              f"{100 * ours['fraction_of_peak']:>13.0f}%", flush=True)
    print(json.dumps({"benchmark": "train_step_vs_peer", "peer": "rosinality/style-based-gan-pytorch",
                      "device": jax.devices()[0].device_kind, "matmul_peak_gflops": peak / 1e9,
                      "load": os.getloadavg(), "results": rows}))


def define_flags() -> None:
    flags.DEFINE_string("peer_path", None, "checkout of rosinality/style-based-gan-pytorch")
    flags.DEFINE_string("peer_python", sys.executable, "a Python with torch, to run the peer")
    flags.DEFINE_list("resolutions", ["32", "64"], "square resolutions (stages of the paper network)")
    flags.DEFINE_integer("batch", 16, "images per iteration")
    flags.DEFINE_integer("repeats", 3, "timed iterations per side")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        benchmark(FLAGS.peer_path, FLAGS.peer_python, [int(r) for r in FLAGS.resolutions],
                  FLAGS.batch, FLAGS.repeats)
    except (ValueError, OSError) as e:
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
