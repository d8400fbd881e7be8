"""How much of the demo's train step is fixed per-call cost (dispatch, small kernels), and cures.

    python -m benchmarks.bench_step_overhead                  # demo's last stage, 10 rounds
    python -m benchmarks.bench_step_overhead --rounds=20 --scan_steps=4

Compiles, on one device, the loop's train step (steps.train_step at the config's last stage,
faded in, with R1) and times its variants in alternation, one call of each per round, so a
shared machine's load falls on all of them alike (the median over rounds is printed):
  - "noop": a jitted function of the step's arguments returning one scalar: the cost of a
    call with the step's ~320 argument arrays, without work;
  - "step bN": the step at batch N (4, 8, 16 by default); a least-squares line through these
    gives the fixed cost per step (the intercept: dispatch, kernel launches, the Adam updates
    and everything else that does not grow with the batch) and the cost per image;
  - "host part": the time until the call of the batch-16 step returns (before its results are
    ready);
  - "opt NAME": the batch-16 step compiled with XLA:CPU options (--options); an option this
    jaxlib does not know is reported and skipped;
  - "scan K": K steps in one compiled call (lax.scan over a stacked [K, batch, ...] input, the
    same per-step keys), time per step; "unrolled K": the same scan fully unrolled (one
    straight-line program of K steps, no loop). The parameters after one call of each are
    compared with K single steps (largest absolute difference).
Also counts the compiled step's HLO: entry instructions, fusions, convolutions and while loops.
Prints a table and one JSON line.
"""
import functools
import json
import os
import re
import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags

from experiments import config_flags
from stylegan_jax.networks import stage_shape
from stylegan_jax.training import parallel, state as state_lib, steps
from stylegan_jax.utils import cpu_compiler_options

FLAGS = flags.FLAGS
DEFAULT_OPTIONS = ("xla_cpu_multi_thread_eigen=false", "xla_cpu_use_xnnpack=true",
                   "xla_cpu_use_onednn=true", "xla_cpu_enable_concurrency_optimized_scheduler=true",
                   "xla_cpu_use_thunk_runtime=false")


def _option(text: str) -> tuple:
    name, value = text.split("=", 1)
    return name, {"true": True, "false": False}.get(value.lower(), value)


def hlo_counts(compiled) -> dict:
    """Instructions of the compiled program's entry computation, and some kinds in the module."""
    text = compiled.as_text()
    entry = text[text.index("ENTRY"):]
    return {"entry_instructions": entry.count(" = "),
            "entry_fusions": len(re.findall(r" fusion\(", entry)),
            "convolutions": len(re.findall(r" convolution\(", text)),
            "while_loops": len(re.findall(r" while\(", text))}


def benchmark(config_name: str = "demo", batches=(4, 8, 16), rounds: int = 10,
              scan_steps: int = 4, options=DEFAULT_OPTIONS) -> dict:
    """The command with its flags' values: prints the table and the JSON line."""
    config = ml_collections.FrozenConfigDict(config_flags.load_config(config_name))
    G, D = state_lib.build_networks(config)
    mesh = parallel.make_mesh(jax.devices()[:1])
    repl = parallel.replicated(mesh)
    state0 = jax.jit(functools.partial(state_lib.init_train_state, G, D, config),
                     out_shardings=repl)()
    stage = config.model.num_stages - 1
    height, width = stage_shape(G.base_shape, stage)
    main_batch = max(batches)
    images = np.random.default_rng(0).uniform(
        -1, 1, (scan_steps, main_batch, height, width, 3)).astype(np.float32)

    def batch(n, k=0):
        return {"image": jnp.asarray(images[k, :n]), "label": jnp.zeros((n, 0), jnp.float32)}

    scalars = (jnp.float32(1.0), jnp.float32(1e-3), jnp.float32(1e-3))
    step = functools.partial(steps.train_step, G=G, D=D, config=config, stage=stage, apply_r1=True)
    base_options = dict(cpu_compiler_options(config.get("fast_compile", False)) or {})

    def compile_step(n, extra=None):
        return jax.jit(step, compiler_options={**base_options, **(extra or {})} or None).lower(
            state0, batch(n), *scalars).compile()

    def scanned(state, stacked, alpha, g_lr, d_lr, unroll=1):
        return jax.lax.scan(lambda s, xs: step(s, *xs), state, (stacked, alpha, g_lr, d_lr),
                            unroll=unroll)

    calls = {f"step b{n}": (compile_step(n), (batch(n),) + scalars) for n in batches}
    main = calls[f"step b{main_batch}"][0]
    counts = hlo_counts(main)
    skipped = {}
    for text in options:
        name, value = _option(text)
        try:
            calls[f"opt {name}={value}"] = (compile_step(main_batch, {name: value}),
                                            (batch(main_batch),) + scalars)
        except Exception as e:  # pylint: disable=broad-except  (XLA's error for an unknown option)
            skipped[text] = str(e).splitlines()[0][:120]
    stacked = {"image": jnp.asarray(images), "label": jnp.zeros((scan_steps, main_batch, 0))}
    per_step = tuple(jnp.full((scan_steps,), x) for x in scalars)
    scan_call = jax.jit(scanned).lower(state0, stacked, *per_step).compile()
    unrolled_call = jax.jit(functools.partial(scanned, unroll=scan_steps)).lower(
        state0, stacked, *per_step).compile()
    main_args = (batch(main_batch),) + scalars
    noop = jax.jit(lambda s, b, a, g, d: s.step + 1).lower(state0, *main_args).compile()

    # K single steps against one call of K steps (rolled and unrolled), from the same state.
    single = state0
    for k in range(scan_steps):
        single, _ = main(single, batch(main_batch, k), *scalars)
    expected = jax.tree.leaves(parallel.to_host((single.g_params, single.d_params)))
    differences = {}
    for name, fn in (("scan", scan_call), ("unrolled", unrolled_call)):
        together, _ = fn(state0, stacked, *per_step)
        got = jax.tree.leaves(parallel.to_host((together.g_params, together.d_params)))
        differences[name] = max(float(np.max(np.abs(a.astype(np.float64) - b)))
                                for a, b in zip(expected, got))

    states = {name: state0 for name in calls}
    multi = {f"scan {scan_steps}": scan_call, f"unrolled {scan_steps}": unrolled_call}
    states.update({name: state0 for name in multi})
    times = {name: [] for name in list(calls) + ["host part", "noop"] + list(multi)}
    for r in range(rounds + 1):  # round 0 warms up
        for name, (fn, args) in calls.items():
            start = time.perf_counter()
            states[name], metrics = fn(states[name], *args)
            returned = time.perf_counter()
            jax.block_until_ready((states[name], metrics))
            if r:
                times[name].append(time.perf_counter() - start)
                if name == f"step b{main_batch}":
                    times["host part"].append(returned - start)
        start = time.perf_counter()
        jax.block_until_ready(noop(state0, *main_args))
        if r:
            times["noop"].append(time.perf_counter() - start)
        for name, fn in multi.items():
            start = time.perf_counter()
            states[name], metrics = fn(states[name], stacked, *per_step)
            jax.block_until_ready((states[name], metrics))
            if r:
                times[name].append((time.perf_counter() - start) / scan_steps)
    ms = {name: 1000 * statistics.median(v) for name, v in times.items()}
    slope, intercept = np.polyfit(list(batches), [ms[f"step b{n}"] for n in batches], 1)
    load = os.getloadavg()[0]
    print(f"config {config_name} at {height}x{width}, 1 CPU device of {os.cpu_count()} cores, "
          f"load {load:.1f}, median of {rounds} rounds")
    print(f"compiled step (batch {main_batch}): "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"{'variant':<58}{'ms per step':>12}")
    for name, value in ms.items():
        print(f"{name:<58}{value:>12.2f}")
    print(f"fixed cost per step (intercept over batches {list(batches)}): {intercept:.1f} ms; "
          f"per image {slope:.2f} ms")
    for name, diff in differences.items():
        print(f"{name} {scan_steps} steps vs {scan_steps} single steps: largest parameter "
              f"difference {diff:.3g}{' (bitwise equal)' if diff == 0 else ''}")
    for text, why in skipped.items():
        print(f"skipped option {text}: {why}")
    result = {"benchmark": "step_overhead", "config": config_name, "load_average": load,
              "ms_per_step": ms, "fixed_ms": float(intercept), "per_image_ms": float(slope),
              "hlo": counts, "scan_steps": scan_steps, "max_abs_diff_vs_single": differences,
              "skipped_options": skipped}
    print(json.dumps(result))
    return result


def define_flags() -> None:
    """Defines the command's flags (only when run as a program, as bench_train does)."""
    flags.DEFINE_string("config", "demo", "experiments/configs name (its last stage is timed)")
    flags.DEFINE_list("batches", ["4", "8", "16"], "batch sizes of the step (multiples of 4)")
    flags.DEFINE_integer("rounds", 10, "timed rounds (one call of every variant each)")
    flags.DEFINE_integer("scan_steps", 4, "K: steps per compiled call in the scan variant")
    flags.DEFINE_list("options", list(DEFAULT_OPTIONS), "XLA:CPU compiler options NAME=VALUE to "
                      "try on the step, one variant each")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    benchmark(FLAGS.config, [int(b) for b in FLAGS.batches], FLAGS.rounds, FLAGS.scan_steps,
              FLAGS.options)


if __name__ == "__main__":
    define_flags()
    app.run(main)
