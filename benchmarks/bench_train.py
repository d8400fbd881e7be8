"""Training throughput, FLOPs, fraction of peak and memory of the full train step.

    python -m benchmarks.bench_train                          # demo + paper-size at 32, 64, 128
    python -m benchmarks.bench_train --cases=paper@32x32 --batch=16 --repeats=5
    python -m benchmarks.bench_train --dtype=bfloat16         # mixed precision (GPU/TPU)
    python -m benchmarks.bench_train --cases=demo_projection,demo_projection_plain,demo_acgan
    python -m benchmarks.bench_train --cases=demo,demo_ada,demo_diffaug --repeats=10

A step is what training runs: one D step with R1 (grad of grad through the blur) and one G step
with style mixing, Adam updates and the generator average (stylegan_jax/training/steps.py),
jit-compiled as the loop compiles it, on random data. For each case:
  - compile time (lower + compile, once) and the median step time of --repeats steps after one
    warm-up step, hence images/s;
  - FLOPs per step from XLA's cost analysis of the lowered step (before the backend's rewrites,
    so CPU and GPU count alike) with every convolution direct (lax.conv: the algorithm's count,
    whatever layers.conv2d runs; the CPU's Winograd convolutions do fewer multiplies), and per
    pass (G forward, D forward, ...) so it is clear where the work is;
  - achieved FLOP/s over this machine's peak, measured in the same run as the median time of a
    large float32 matrix product, so the fraction is comparable across machines;
  - memory per image from XLA's memory analysis (temporaries + outputs + arguments) / batch.
Cases: "demo" is experiments/configs/demo.py at its last stage (64x32); "paper@RES" is the
paper's network (fmap_base 8192, fmap_max 512, 512-d latents; experiments/configs/ffhq.py) grown
to RES, fully faded in. The conditional demos take the synthetic portraits' labels (uniform
random): "demo_acgan", "demo_projection" (with its matching-aware term, one more D pass on the
reals) and "demo_projection_plain" (without it). "demo_ada" and "demo_diffaug" are the demo with
augment.kind "ada" (at p = 0.5; the whole pipeline runs whatever p is) and "diffaug": the cost of
augmenting every image D sees, R1 through the augmentation included. Prints a table and one JSON
line.
"""
import functools
import json
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags

from benchmarks.timing import alternating_median_seconds, median_seconds
from experiments.configs import demo, demo_acgan, demo_projection, ffhq
from stylegan_jax import conditional, layers
from stylegan_jax.data.synthetic_portraits import LABEL_SPEC
from stylegan_jax.networks import stage_shape
from stylegan_jax.training import parallel, state as state_lib
from stylegan_jax.training.steps import generate, make_train_step
from stylegan_jax.utils import exit_with_error

DEFAULT_CASES = ("demo", "paper@32x32", "paper@64x64", "paper@128x128")
AUGMENTED_CASES = {"demo_ada": ("ada", 0.5), "demo_diffaug": ("diffaug", 0.0)}  # kind, p
CONDITIONAL_CASES = {"demo_acgan": demo_acgan.get_config, "demo_projection": demo_projection.get_config,
                     "demo_projection_plain": demo_projection.get_config}
FLAGS = flags.FLAGS


def matmul_peak_flops(n: int = 4096, repeats: int = 10, dtype=jnp.float32) -> float:
    """FLOP/s of an n x n x n matrix product (2 n^3 FLOPs), median of repeats."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), dtype)
    matmul = jax.jit(jnp.matmul)
    seconds = median_seconds(lambda _: matmul(a, b).block_until_ready(), repeats)
    return 2.0 * n ** 3 / seconds


def conv_fraction_of_peak(peak: float, batch: int, size: int, channels: int, repeats: int = 5,
                          dtype=jnp.float32) -> dict:
    """Fraction of the matmul peak that XLA reaches on the step's dominant op alone: a 3x3
    same-padded convolution channels -> channels at size x size, forward and forward+backward
    (input and weight gradients). The ceiling the whole step can reach on this backend."""
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, size, size, channels), dtype)
    k = jax.random.normal(jax.random.PRNGKey(1), (3, 3, channels, channels), dtype)

    def conv(x, k):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    out = {}
    for name, fn in (("forward", conv),
                     ("forward+backward", jax.grad(lambda x, k: jnp.sum(conv(x, k) ** 2),
                                                   argnums=(0, 1)))):
        lowered = jax.jit(fn).lower(x, k)
        compiled = lowered.compile()
        seconds = median_seconds(lambda _: jax.block_until_ready(compiled(x, k)), repeats)
        out[name] = _flops(lowered) / seconds / peak
    return out


def case_config(case: str, dtype: str):
    """(config, stage) for 'demo', a conditional demo (CONDITIONAL_CASES) or 'paper@HxW'."""
    if case == "demo" or case in CONDITIONAL_CASES or case in AUGMENTED_CASES:
        config = CONDITIONAL_CASES.get(case, demo.get_config)()
        if case == "demo_projection_plain":
            config.loss.mismatch_weight = 0.0
        if case in AUGMENTED_CASES:
            config.augment.kind, config.augment.p = AUGMENTED_CASES[case]
        stage = config.model.num_stages - 1
    elif case.startswith("paper@"):
        config = ffhq.get_config()
        height, width = (int(v) for v in case[len("paper@"):].split("x"))
        base = tuple(config.model.base_shape)
        stages = [s for s in range(12) if stage_shape(base, s) == (height, width)]
        if not stages:
            raise ValueError(f"case {case!r}: {height}x{width} is not a stage of base {base}")
        stage = stages[0]
        config.model.num_stages = stage + 1  # channel counts depend on the stage, not on this
    else:
        raise ValueError(f"unknown case {case!r}: use 'demo', {', '.join(CONDITIONAL_CASES)}, "
                         f"{', '.join(AUGMENTED_CASES)} or "
                         "'paper@HxW' (e.g. paper@64x64)")
    config.model.dtype = dtype
    config.fast_compile = False
    return config, stage


def _flops(lowered) -> float:
    """FLOPs of a lowered (not yet compiled) computation, by XLA's cost analysis.

    Counted before the backend's optimizations on purpose: on GPU the compiled program calls
    convolutions as cuDNN custom calls, which the compiled cost analysis does not count (it gave
    11 GFLOP for a paper@32x32 step at batch 32 that does 6949), so the count would depend on
    the backend.
    """
    analysis = lowered.cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older jax returned one dict per device
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan"))) if analysis else float("nan")


def _memory_bytes(compiled) -> int:
    m = compiled.memory_analysis()
    if m is None:
        return -1
    return int(m.temp_size_in_bytes + m.output_size_in_bytes + m.argument_size_in_bytes
               - m.alias_size_in_bytes)


def pass_flops(G, D, state, batch, stage: int, config) -> dict:
    """FLOPs of the pieces of a step, each compiled on its own (XLA cost analysis)."""
    mixing = config.loss.style_mixing_prob
    n = batch["image"].shape[0]
    gen = functools.partial(generate, G, labels=None, batch_size=n, stage=stage, alpha=1.0,
                            mixing_prob=mixing)

    def d_fwd(d_params, x):
        return jnp.sum(D.apply({"params": d_params}, x, stage=stage))

    def g_loss(g_params, d_params, key):
        return jnp.sum(D.apply({"params": d_params}, gen(g_params, key)[0], stage=stage))

    def r1_grad(d_params, x):  # D's parameter gradient of ||grad_x D(x)||^2: grad of grad
        return jax.grad(lambda p: jnp.sum(jax.grad(d_fwd, argnums=1)(p, x) ** 2))(d_params)

    key = jax.random.PRNGKey(0)
    pieces = {
        "G forward": (lambda p, k: gen(p, k)[0], (state.g_params, key)),
        "D forward": (d_fwd, (state.d_params, batch["image"])),
        "D fwd+bwd": (jax.grad(d_fwd), (state.d_params, batch["image"])),
        "R1 (grad of grad)": (r1_grad, (state.d_params, batch["image"])),
        "G step (G+D fwd+bwd)": (jax.grad(g_loss), (state.g_params, state.d_params, key)),
    }
    with layers.conv_impl_scope("lax"):  # direct convolutions' count (see direct_step_flops)
        return {name: _flops(jax.jit(fn).lower(*args)) for name, (fn, args) in pieces.items()}


def direct_step_flops(G, D, config, groups, sharding, args, stage: int) -> float:
    """FLOPs of the step (train_step on args) with every convolution direct (lax.conv): the
    count of the algorithm, the same on every backend and conv2d implementation. Winograd's
    3x3 convolutions (the CPU's default for wide ones) do 16/36 of the multiplies: counting
    their program would count fewer FLOPs for the same work. make_train_step's own jit, not its
    cached one, so that the scope reaches a fresh trace."""
    with layers.conv_impl_scope("lax"):
        step = make_train_step.__wrapped__(G, D, config, sharding, groups)
        return _flops(step.lower(*args, stage=stage, apply_r1=True))


def run_case(case: str, batch_size: int, repeats: int, dtype: str, peak: float,
             with_passes: bool, count_only: bool = False, before_step=None) -> dict:
    """One case's row. before_step(i), if given, runs (untimed) before each step, warm-up
    included: bench_peer.py runs the PyTorch peer's iteration there, alternating with ours."""
    config, stage = case_config(case, dtype)
    frozen = ml_collections.FrozenConfigDict(config)
    spec = LABEL_SPEC if config.data.use_labels else None
    groups = conditional.attribute_groups(spec) if spec else ()
    G, D = state_lib.build_networks(frozen, conditional.label_size(spec))
    mesh = parallel.make_mesh()
    repl = parallel.replicated(mesh)
    state = jax.jit(functools.partial(state_lib.init_train_state, G, D, frozen),
                    out_shardings=repl)()
    height, width = stage_shape(G.base_shape, stage)
    rng = np.random.default_rng(0)
    labels = (np.asarray(conditional.sample_labels(jax.random.key(0), groups, batch_size)) if spec
              else np.zeros((batch_size, 0), np.float32))
    batch = parallel.global_batch({
        "image": rng.uniform(-1, 1, (batch_size, height, width, 3)).astype(np.float32),
        "label": labels}, mesh)
    step = make_train_step(G, D, frozen, repl, groups)
    args = (state, batch, jnp.float32(1.0), jnp.float32(1e-3), jnp.float32(1e-3))
    flops = direct_step_flops(G, D, frozen, groups, repl, args, stage)
    if count_only:
        return {"case": case, "resolution": f"{height}x{width}", "batch": batch_size,
                "dtype": dtype, "gflop_per_step": flops / 1e9}
    start = time.perf_counter()
    lowered = step.lower(*args, stage=stage, apply_r1=True)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start

    holder = {"state": state}

    def one_step(_):
        new_state, metrics = compiled(holder["state"], *args[1:])
        jax.block_until_ready(metrics)
        holder["state"] = new_state

    step_s = (median_seconds(one_step, repeats) if before_step is None
              else alternating_median_seconds(one_step, before_step, repeats))
    result = {"case": case, "resolution": f"{height}x{width}", "batch": batch_size, "dtype": dtype,
              "compile_s": compile_s, "step_ms": 1000 * step_s, "images_per_s": batch_size / step_s,
              "gflop_per_step": flops / 1e9, "achieved_gflops": flops / step_s / 1e9,
              "fraction_of_peak": flops / step_s / peak,
              "memory_mb_per_image": _memory_bytes(compiled) / batch_size / 2 ** 20}
    if with_passes and not spec:  # the passes are counted for unconditional networks
        result["gflop_per_pass"] = {k: v / 1e9 for k, v in pass_flops(
            G, D, holder["state"], batch, stage, frozen).items()}
    return result


def benchmark(cases=DEFAULT_CASES, batch: int = 16, repeats: int = 5, dtype: str = "float32",
              matmul_size: int = 4096, passes: bool = False, conv_check=(), count_only: bool = False) -> None:
    """The command with its flags' values (same names and defaults; cases and conv_check are
    sequences): measures the cases and prints the table and the JSON line."""
    if count_only:
        results = [run_case(c.strip(), batch, repeats=0, dtype=dtype, peak=float("nan"),
                            with_passes=False, count_only=True)
                   for c in cases if c.strip()]
        for r in results:
            print(f"{r['case']:<22}{r['resolution']:>9}{r['batch']:>6}{r['dtype']:>10}"
                  f"{r['gflop_per_step']:>11.2f} GFLOP/step")
        print(json.dumps({"benchmark": "train_step_flops", "results": results}))
        return
    peak = matmul_peak_flops(matmul_size, dtype=jnp.dtype(dtype))
    device = jax.devices()[0]
    print(f"device: {device.platform} {device.device_kind} x{jax.device_count()}   "
          f"matmul peak ({matmul_size}^3 {dtype}): {peak / 1e9:.1f} GFLOP/s")
    conv = None
    if conv_check:
        size, channels = (int(v) for v in conv_check)
        conv = conv_fraction_of_peak(peak, batch, size, channels, dtype=jnp.dtype(dtype))
        print(f"one 3x3 conv {channels}->{channels} at {size}x{size}, batch {batch}: "
              + ", ".join(f"{k} {100 * v:.0f}% of peak" for k, v in conv.items()))
    results = []
    header = (f"{'case':<22}{'res':>9}{'batch':>6}{'compile s':>10}{'step ms':>10}{'img/s':>8}"
              f"{'GFLOP/step':>11}{'GFLOP/s':>9}{'of peak':>8}{'MB/img':>8}")
    print(header)
    for case in [c.strip() for c in cases if c.strip()]:
        r = run_case(case, batch, repeats, dtype, peak, passes)
        results.append(r)
        print(f"{r['case']:<22}{r['resolution']:>9}{r['batch']:>6}{r['compile_s']:>10.1f}"
              f"{r['step_ms']:>10.1f}{r['images_per_s']:>8.1f}{r['gflop_per_step']:>11.2f}"
              f"{r['achieved_gflops']:>9.1f}{100 * r['fraction_of_peak']:>7.0f}%"
              f"{r['memory_mb_per_image']:>8.1f}", flush=True)
        for name, g in r.get("gflop_per_pass", {}).items():
            print(f"    {name:<24}{g:>10.2f} GFLOP")
    if any(not np.isfinite(r["gflop_per_step"]) for r in results):
        print(f"no FLOP count from XLA's cost analysis on {device.platform}: run the same cases "
              "with --count_only on a CPU machine and divide by the step times above")
    print(json.dumps({"benchmark": "train_step", "device": f"{device.platform} {device.device_kind}",
                      "device_count": jax.device_count(), "matmul_peak_gflops": peak / 1e9,
                      "conv_check": conv, "results": results}))


def define_flags() -> None:
    """Defines the command's flags. Only run as a program: tests import several benchmarks into
    one process, and absl refuses a flag name (e.g. --repeats) defined twice."""
    flags.DEFINE_list("cases", list(DEFAULT_CASES), f"comma-separated: demo, {', '.join(CONDITIONAL_CASES)}, "
                      f"{', '.join(AUGMENTED_CASES)}, paper@HxW")
    flags.DEFINE_integer("batch", 16, "images per step")
    flags.DEFINE_integer("repeats", 5, "timed steps per case")
    flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "dtype of the networks and the peak matmul")
    flags.DEFINE_integer("matmul_size", 4096, "n of the peak matmul")
    flags.DEFINE_bool("passes", False, "also count FLOPs per pass")
    flags.DEFINE_list("conv_check", [], "SIZE,CHANNELS: also time one 3x3 conv (e.g. 32,512), the ceiling")
    flags.DEFINE_bool("count_only", False, "only count FLOPs per step (lowering, no compile or timing): for "
                      "backends whose cost analysis gives none, e.g. GPU, run this on CPU")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        benchmark(FLAGS.cases, batch=FLAGS.batch, repeats=FLAGS.repeats, dtype=FLAGS.dtype,
                  matmul_size=FLAGS.matmul_size, passes=FLAGS.passes, conv_check=FLAGS.conv_check,
                  count_only=FLAGS.count_only)
    except (ValueError, OSError, ImportError) as e:  # bad input, a missing file or optional package
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
