"""Explorer latency: full synthesis vs cached re-synthesis after a feature-map edit.

    python -m benchmarks.bench_explorer                       # demo architecture, random weights
    python -m benchmarks.bench_explorer --model=workdirs/demo # a trained workdir or exported .npz

A "live edit" is what the web UI does while an amount slider moves: a new amount for an edit on
one layer, the image re-rendered, converted to uint8 and encoded as PNG. Timings are the median of
--repeats calls after one warm-up call (compilation excluded), each with a different amount (so
nothing is cached but the activations before the edited layer). Speed does not depend on the
weights, so random weights of the demo architecture measure the bundled demo model's latency.
Prints a table and one JSON line.
"""
import io
import json

import numpy as np
from absl import app, flags
from PIL import Image

from benchmarks.timing import median_seconds
from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.edits import Edit, box_mask, edit_deltas
from stylegan_jax.utils import exit_with_error

TARGET_MS = 100.0
FLAGS = flags.FLAGS


def demo_shaped_bundle():
    """Random weights in the architecture of experiments/configs/demo.py (64x32 portraits)."""
    from experiments.configs import demo  # pylint: disable=import-outside-toplevel
    from stylegan_jax.explore.model import generator_config  # pylint: disable=import-outside-toplevel
    from stylegan_jax.training.state import build_networks  # pylint: disable=import-outside-toplevel
    kwargs = generator_config(build_networks(demo.get_config())[0])
    kwargs["base_shape"] = tuple(kwargs["base_shape"])
    return random_bundle(seed=0, **kwargs)


def _png_bytes(image: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return len(buffer.getvalue())


def _median_ms(call, repeats: int) -> float:
    return 1000.0 * median_seconds(call, repeats)


def run(explorer: Explorer, repeats: int, seed: int = 0):
    """{layer: {"full_ms", "cached_ms"}} for an edit of a central box on each layer."""
    w = explorer.w_from_seeds([seed], psi=0.7)
    explorer.synthesize(w)  # the page showed this image first: its activations are cached
    results = {}
    for info in explorer.layers:
        mask = box_mask((info.height, info.width), (0.4, 0.25, 0.6, 0.75))
        edit = Edit(info.name, {c: 1.0 for c in range(min(8, info.channels))}, mask)

        def request(i, use_cache, edit=edit):
            deltas = edit_deltas([edit.with_amount(0.5 + 0.01 * i)], explorer)
            _png_bytes(explorer.synthesize(w, deltas, use_cache=use_cache).uint8[0])
        results[info.name] = {"full_ms": _median_ms(lambda i: request(i, False), repeats),
                              "cached_ms": _median_ms(lambda i: request(i, True), repeats)}
    return results


def benchmark(model: str | None = None, repeats: int = 30) -> None:
    """The command with its flags' values (same names and defaults): times live edits of `model`
    (None: random weights of the demo architecture), prints the table and the JSON line."""
    explorer = Explorer.open(model) if model else Explorer(demo_shaped_bundle())
    results = run(explorer, repeats)
    print(f"model: {explorer.provenance.get('source')}  image {explorer.image_shape[0]}x"
          f"{explorer.image_shape[1]}  median of {repeats} (ms, incl. uint8 + PNG encode)")
    print(f"{'edited layer':<18}{'full':>10}{'cached':>10}{'speed-up':>10}")
    for name, r in results.items():
        print(f"{name:<18}{r['full_ms']:>10.2f}{r['cached_ms']:>10.2f}{r['full_ms'] / r['cached_ms']:>9.1f}x")
    worst = max(r["cached_ms"] for r in results.values())
    print(f"worst cached live edit: {worst:.2f} ms (target < {TARGET_MS:.0f} ms): "
          f"{'OK' if worst < TARGET_MS else 'TOO SLOW'}")
    print(json.dumps({"benchmark": "explorer_latency", "model": explorer.provenance.get("source"),
                      "image_shape": list(explorer.image_shape), "repeats": repeats,
                      "layers": results, "worst_cached_ms": worst, "target_ms": TARGET_MS}))


def define_flags() -> None:
    """Defines the command's flags. Only run as a program: bench_export imports this module, and
    absl refuses a flag name (e.g. --repeats) defined twice in one process."""
    flags.DEFINE_string("model", None, "workdir or exported .npz (default: random weights of the demo architecture)")
    flags.DEFINE_integer("repeats", 30, "timed calls per measurement")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        benchmark(FLAGS.model, repeats=FLAGS.repeats)
    except (ValueError, OSError, ImportError) as e:  # bad input, a missing file or optional package
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
