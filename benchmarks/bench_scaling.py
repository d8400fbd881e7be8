"""Weak scaling on local processes: the train step on 1, 2, 4 processes with a fixed batch each.

    python -m benchmarks.bench_scaling                                  # smoke, 1/2/4 x 2 devices
    python -m benchmarks.bench_scaling --config=demo --per_process_batch=16 --repeats=10
    python -m benchmarks.bench_scaling --processes=1,2 --devices_per_process=1

For each process count P the command starts P copies of itself on localhost, joined by
`parallel.initialize_distributed` (a coordinator on a free port, cross-process collectives
through gloo, as `experiments.train --coordinator_address ...` does), each with
--devices_per_process forced host devices (XLA_FLAGS=--xla_force_host_platform_device_count).
Each process feeds --per_process_batch random images per step, so the global batch is P times
that (weak scaling), sharded over the ("data",) mesh of all P x devices; the step is the
training loop's (`steps.make_train_step`) at the config's last stage, faded in, with R1. Every
process times --repeats steps after one warm-up step (benchmarks.timing), then reports the CRC32
of its copy of the state; the run's parameters are identical when all P copies agree.

The step's gradient all-reduce is also timed alone: a jitted psum over the mesh of a tree of
the parameters' shapes (G and D, one copy per device), the traffic the step adds to a
single-device step (XLA combines the step's reductions into one all-reduce of a tuple), and the
same number of floats as one flat buffer. On a machine with fewer cores than P x devices the
processes oversubscribe the CPU: the step time then grows with P from compute alone, and the
all-reduce columns are the part that is communication.

Runs with different P train on different global batches (more images, and each process reads
its own random images), so their parameters are compared within a run, not across runs.
Prints a table and one JSON line.
"""
import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def worker(config_name: str, per_process_batch: int, repeats: int) -> dict:
    """One process of a run (jax.distributed already initialized): times the step and the
    all-reduce alone; returns this process's measurements and the CRC32 of its state."""
    # pylint: disable=import-outside-toplevel  (JAX starts after the flags, in the workers only)
    import jax
    import jax.numpy as jnp
    import ml_collections
    from jax.sharding import PartitionSpec

    from benchmarks.timing import median_seconds
    from experiments import config_flags
    from stylegan_jax.networks import stage_shape
    from stylegan_jax.training import checkpoint, parallel, state as state_lib
    from stylegan_jax.training.steps import make_train_step
    from stylegan_jax.utils import parameter_count

    config = ml_collections.FrozenConfigDict(config_flags.load_config(config_name))
    G, D = state_lib.build_networks(config)
    mesh = parallel.make_mesh()
    repl = parallel.replicated(mesh)
    multiple = parallel.batch_multiple(mesh, D.mbstd_group_size) // jax.process_count()
    if per_process_batch % multiple:
        raise ValueError(f"--per_process_batch={per_process_batch} is not a multiple of "
                         f"{multiple} (local devices x minibatch-stddev group)")
    stage = config.model.num_stages - 1
    height, width = stage_shape(G.base_shape, stage)
    rng = np.random.default_rng([config.seed, jax.process_index()])
    local = {"image": rng.uniform(-1, 1, (per_process_batch, height, width, 3)).astype(np.float32),
             "label": np.zeros((per_process_batch, 0), np.float32)}
    batch = parallel.global_batch(local, mesh)
    state = jax.jit(functools.partial(state_lib.init_train_state, G, D, config),
                    out_shardings=repl)()
    step = make_train_step(G, D, config, repl)
    scalars = (jnp.float32(1.0), jnp.float32(1e-3), jnp.float32(1e-3))
    holder = {"state": state}

    def one_step(_):
        holder["state"], metrics = step(holder["state"], batch, *scalars, stage=stage,
                                        apply_r1=True)
        jax.block_until_ready(metrics)

    step_s = median_seconds(one_step, repeats)

    # The all-reduce alone: each device holds its own copy of a parameter-shaped tree.
    n_local = len(mesh.local_devices)
    params = (holder["state"].g_params, holder["state"].d_params)
    copies = jax.tree.map(lambda x: jax.make_array_from_process_local_data(
        parallel.batch_sharded(mesh), np.repeat(np.asarray(x.addressable_data(0))[None],
                                                n_local, axis=0)), params)
    allreduce = jax.jit(jax.shard_map(lambda tree: jax.lax.psum(tree, parallel.DATA_AXIS),
                                      mesh=mesh, in_specs=PartitionSpec(parallel.DATA_AXIS),
                                      out_specs=PartitionSpec(parallel.DATA_AXIS)))
    allreduce_s = median_seconds(lambda _: jax.block_until_ready(allreduce(copies)), repeats)
    # The same bytes as one buffer: what is left when the per-array latency is taken away.
    flat = jax.make_array_from_process_local_data(parallel.batch_sharded(mesh), np.zeros(
        (n_local, parameter_count(params)), np.float32))
    flat_s = median_seconds(lambda _: jax.block_until_ready(allreduce(flat)), repeats)
    return {"process": jax.process_index(), "processes": jax.process_count(),
            "devices": jax.device_count(), "global_batch": per_process_batch * jax.process_count(),
            "step_ms": 1000 * step_s, "allreduce_ms": 1000 * allreduce_s,
            "allreduce_arrays": len(jax.tree.leaves(params)), "allreduce_flat_ms": 1000 * flat_s,
            "parameter_count": parameter_count(params),
            "crc32": checkpoint.state_checksum(parallel.to_host(holder["state"]))}


def wait_all(procs, logs, timeout: float) -> list:
    """The text of every process's log file; when one fails, the others (which would wait for
    it in their next collective) are stopped."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.5)
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()
    texts = []
    for log in logs:
        log.seek(0)
        texts.append(log.read())
        log.close()
    return texts


def run_processes(count: int, devices_per_process: int, config_name: str, per_process_batch: int,
                  repeats: int, timeout: float = 1800) -> dict:
    """Starts `count` workers on localhost and returns process 0's row, with whether all of
    them ended with the same state."""
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    port = free_port()
    files = [tempfile.TemporaryFile("w+") for _ in range(count)]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_scaling", "--worker", f"--config={config_name}",
         f"--per_process_batch={per_process_batch}", f"--repeats={repeats}",
         f"--coordinator_address=localhost:{port}", f"--num_processes={count}",
         f"--process_id={i}"],
        cwd=REPO, env=env, stdout=files[i], stderr=subprocess.STDOUT, text=True)
        for i in range(count)]
    logs = wait_all(procs, files, timeout)
    rows = []
    for i, (proc, log) in enumerate(zip(procs, logs)):
        lines = [line for line in log.splitlines() if line.startswith('{"worker"')]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"process {i} of {count} failed:\n{log[-3000:]}")
        rows.append(json.loads(lines[-1])["worker"])
    row = dict(rows[0])
    del row["process"]
    row["identical_parameters"] = len({r["crc32"] for r in rows}) == 1
    row["step_ms_per_process"] = [r["step_ms"] for r in rows]
    return row


def benchmark(processes=(1, 2, 4), devices_per_process: int = 2, config_name: str = "smoke",
              per_process_batch: int = 8, repeats: int = 5) -> list:
    """The command with its flags' values: runs every process count, prints the table and the
    JSON line, returns the rows."""
    print(f"config {config_name}, {per_process_batch} images per process per step, "
          f"{devices_per_process} forced host devices per process, {os.cpu_count()} CPU cores, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'processes':>9}{'devices':>8}{'batch':>7}{'step ms':>9}{'img/s':>8}{'overhead':>9}"
          f"{'all-reduce ms':>14}{'one buffer ms':>14}{'identical':>10}")
    rows = []
    for count in processes:
        row = run_processes(count, devices_per_process, config_name, per_process_batch, repeats)
        row["images_per_s"] = row["global_batch"] / row["step_ms"] * 1000
        row["overhead_vs_1"] = row["step_ms"] / rows[0]["step_ms"] - 1 if rows else 0.0
        rows.append(row)
        print(f"{count:>9}{row['devices']:>8}{row['global_batch']:>7}{row['step_ms']:>9.1f}"
              f"{row['images_per_s']:>8.1f}{100 * row['overhead_vs_1']:>8.0f}%"
              f"{row['allreduce_ms']:>14.2f}{row['allreduce_flat_ms']:>14.2f}"
              f"{'yes' if row['identical_parameters'] else 'NO':>10}",
              flush=True)
    print(json.dumps({"benchmark": "scaling", "config": config_name,
                      "per_process_batch": per_process_batch,
                      "devices_per_process": devices_per_process, "cpu_count": os.cpu_count(),
                      "load_average": os.getloadavg()[0], "results": rows}))
    return rows


def define_flags() -> None:
    """Defines the command's flags (only when run as a program, as bench_train does)."""
    flags.DEFINE_list("processes", ["1", "2", "4"], "process counts to run")
    flags.DEFINE_integer("devices_per_process", 2, "forced host devices in each process")
    flags.DEFINE_string("config", "smoke", "experiments/configs name (its last stage is timed)")
    flags.DEFINE_integer("per_process_batch", 8, "images per process per step (weak scaling)")
    flags.DEFINE_integer("repeats", 5, "timed steps per run")
    flags.DEFINE_bool("worker", False, "internal: run as one process of a run")
    flags.DEFINE_string("coordinator_address", None, "internal: host:port of process 0")
    flags.DEFINE_integer("num_processes", None, "internal: processes in the run")
    flags.DEFINE_integer("process_id", None, "internal: this process's index")


def main(argv):
    # pylint: disable=import-outside-toplevel
    from stylegan_jax.utils import exit_with_error
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        if FLAGS.worker:
            from stylegan_jax.training import parallel
            if FLAGS.num_processes > 1:
                parallel.initialize_distributed(coordinator_address=FLAGS.coordinator_address,
                                                num_processes=FLAGS.num_processes,
                                                process_id=FLAGS.process_id)
            print(json.dumps({"worker": worker(FLAGS.config, FLAGS.per_process_batch,
                                               FLAGS.repeats)}), flush=True)
            return
        counts = [int(c) for c in FLAGS.processes]
        if not counts or min(counts) < 1:
            raise ValueError(f"--processes must be positive counts, not {FLAGS.processes}")
        benchmark(counts, FLAGS.devices_per_process, FLAGS.config, FLAGS.per_process_batch,
                  FLAGS.repeats)
    except (ValueError, RuntimeError) as e:
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
