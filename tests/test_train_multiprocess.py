"""One and two processes on localhost (CPU collectives through gloo) train one model with the CLI.

Each process has one CPU device and reads its own part of every batch (record i on process
i mod P); jit averages the gradients across them. All processes of a run must end with identical
parameters (the loop logs a CRC32 of its copy of the state), and only process 0 may write
samples and TensorBoard events. The one-process run goes through the same
`--coordinator_address` start.

Runs with different process counts are not compared: each process shuffles its own part of the
data, so the global batches (and hence the parameters) depend on the process count; with the
same global batches only the summation order differs (tests/test_train_multidevice.py). Four
processes are in benchmarks/bench_scaling.py (too slow for the suite on 2 cores).
"""
import glob
import os
import re
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("count", [1, 2])
def test_processes_train_identically_and_write_one_set_of_samples(tmp_path, count):
    workdir, port = str(tmp_path / "run"), free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "experiments.train", "--config=smoke", f"--workdir={workdir}",
         f"--coordinator_address=localhost:{port}", f"--num_processes={count}",
         f"--process_id={i}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(count)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    for i, (proc, log) in enumerate(zip(procs, logs)):
        assert proc.returncode == 0, f"process {i}:\n{log[-3000:]}"
    checksums = [re.findall(rf"process {i}: step 12, parameters crc32 (\d+)", log)
                 for i, log in enumerate(logs)]
    assert all(len(c) == 1 for c in checksums) and all(c == checksums[0] for c in checksums)
    assert logs[0].count("wrote sample grid") == 2
    assert not any("wrote sample grid" in log for log in logs[1:])
    samples = sorted(os.path.basename(p) for p in glob.glob(os.path.join(workdir, "samples", "*")))
    assert samples == ["fakes_0000006.png", "fakes_0000012.png", "reals.png"]
    assert len(glob.glob(os.path.join(workdir, "tensorboard", "events.*"))) == 1
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["10", "12"]
