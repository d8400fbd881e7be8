"""Export time, and the exported generator's inference time in ONNX Runtime on the CPU.

    python -m benchmarks.bench_export                        # demo architecture, random weights
    python -m benchmarks.bench_export --model=workdirs/demo  # a trained workdir or exported .npz
    python -m benchmarks.bench_export --batch_sizes=1,8 --edit_layers=16x8_conv1 --repeats=20
    python -m benchmarks.bench_export --noise=none             # exported without noise

Measures the ONNX export (trace, constant folding, serialization) and its file size next to the
generator's parameter bytes (float32), the SavedModel export (jax2tf) and, per batch size, the
median of --repeats onnxruntime runs after one warm-up run, next to the same function jitted in
JAX on the CPU. Speed does not depend on the weights, so random weights of
the demo architecture stand for the shipped demo model. Prints a table and one JSON line.
"""
import json
import os
import tempfile
import time

import jax
import numpy as np
from absl import app, flags

from benchmarks.timing import median_seconds
from stylegan_jax.utils import exit_with_error

FLAGS = flags.FLAGS


def _median_ms(call, repeats: int) -> float:
    return 1000.0 * median_seconds(lambda _: call(), repeats)


def _feeds(manifest, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in manifest["inputs"]:
        shape = [n if d == "N" else d for d in spec["shape"]]
        feeds[spec["name"]] = (np.full(shape, 0.7, np.float32) if spec["name"] == "psi"
                               else rng.standard_normal(shape).astype(np.float32))
    return feeds


def run(bundle, options, batch_sizes, repeats: int, savedmodel: bool = True) -> dict:
    """Timings as a dict (see the module docstring)."""
    # pylint: disable=import-outside-toplevel  (keep --help fast)
    import onnxruntime as ort
    from stylegan_jax.export import (export_onnx, export_savedmodel, make_export_function,
                                     parameter_bytes)
    G, params, w_avg = bundle.module, bundle.params, bundle.w_avg
    result = {"resolution": None, "batch": {}, "noise": options.noise,
              "parameter_mb": parameter_bytes(params) / 2**20}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "g.onnx")
        start = time.perf_counter()
        manifest = export_onnx(G, params, w_avg, options, path)
        result["onnx_export_s"] = time.perf_counter() - start
        result["onnx_mb"] = os.path.getsize(path) / 2**20
        result["onnx_over_parameters"] = result["onnx_mb"] / result["parameter_mb"]
        result["resolution"] = manifest["resolution"]
        if savedmodel:
            start = time.perf_counter()
            export_savedmodel(G, params, w_avg, options, os.path.join(tmp, "g_tf"))
            result["savedmodel_export_s"] = time.perf_counter() - start
        start = time.perf_counter()
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        result["onnx_session_s"] = time.perf_counter() - start
    jax_fn = jax.jit(make_export_function(G, params, w_avg, options))
    for n in batch_sizes:
        feeds = _feeds(manifest, n)
        ort_ms = _median_ms(lambda: session.run(["images"], feeds), repeats)  # noqa: B023
        args = [feeds[s["name"]] for s in manifest["inputs"]]
        jax_ms = _median_ms(lambda: jax_fn(*args).block_until_ready(), repeats)  # noqa: B023
        result["batch"][str(n)] = {"onnxruntime_ms": ort_ms, "onnxruntime_ms_per_image": ort_ms / n,
                                   "jax_cpu_ms": jax_ms}
    return result


def benchmark(model: str | None = None, batch_sizes=(1, 4, 16), edit_layers=(), repeats: int = 20,
              no_savedmodel: bool = False, noise: str = "const") -> None:
    """The command with its flags' values (same names and defaults; batch_sizes and edit_layers are
    sequences): times the exports and runs, prints the table and the JSON line."""
    from benchmarks.bench_explorer import demo_shaped_bundle  # pylint: disable=import-outside-toplevel
    from stylegan_jax.explore.model import load_generator  # pylint: disable=import-outside-toplevel
    from stylegan_jax.export import ExportOptions  # pylint: disable=import-outside-toplevel
    bundle = load_generator(model) if model else demo_shaped_bundle()
    options = ExportOptions(edit_layers=tuple(filter(None, edit_layers)), noise=noise)
    result = run(bundle, options, list(batch_sizes), repeats, savedmodel=not no_savedmodel)
    result.update(model=model or "random weights, demo architecture",
                  edit_layers=list(options.edit_layers), cpu_count=os.cpu_count(),
                  repeats=repeats)
    h, w = result["resolution"]
    print(f"generator {h}x{w} ({result['model']}), noise {noise}, ONNX {result['onnx_mb']:.2f} MB "
          f"({result['onnx_over_parameters']:.2f}x the {result['parameter_mb']:.2f} MB of float32 "
          f"parameters): export "
          f"{result['onnx_export_s']:.1f} s, session {result['onnx_session_s']:.2f} s"
          + (f"; SavedModel export {result['savedmodel_export_s']:.1f} s"
             if "savedmodel_export_s" in result else ""))
    print(f"{'batch':>5} | {'onnxruntime ms':>14} | {'ms / image':>10} | {'JAX CPU ms':>10}")
    for n, row in result["batch"].items():
        print(f"{n:>5} | {row['onnxruntime_ms']:14.2f} | {row['onnxruntime_ms_per_image']:10.2f} | "
              f"{row['jax_cpu_ms']:10.2f}")
    print(json.dumps({"bench_export": result}))


def define_flags() -> None:
    """Defines the command's flags. Only run as a program: tests import several benchmarks into
    one process, and absl refuses a flag name (e.g. --repeats) defined twice."""
    flags.DEFINE_string("model", None, "workdir, checkpoint step dir or exported .npz (default: random weights "
                        "of the demo architecture)")
    flags.DEFINE_list("batch_sizes", "1,4,16", "comma-separated batch sizes")
    flags.register_validator("batch_sizes", lambda sizes: all(size.isdigit() and int(size) > 0 for size in sizes),
                             "batch sizes are positive integers, e.g. 1,4,16")
    flags.DEFINE_list("edit_layers", [], "comma-separated edit-input layers")
    flags.DEFINE_integer("repeats", 20, "timed runs per measurement")
    flags.DEFINE_bool("no_savedmodel", False, "skip the SavedModel export")
    flags.DEFINE_enum("noise", "const", ["const", "none"], "noise of the exported model")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        benchmark(FLAGS.model, batch_sizes=[int(size) for size in FLAGS.batch_sizes],
                  edit_layers=FLAGS.edit_layers, repeats=FLAGS.repeats, no_savedmodel=FLAGS.no_savedmodel,
                  noise=FLAGS.noise)
    except (ValueError, OSError, ImportError) as e:  # bad input, a missing file or optional package
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
