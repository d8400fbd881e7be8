r"""How well conditional generators draw what they are asked for, judged by the attribute classifier.

    python -m benchmarks.bench_conditional \
        --runs=acgan:workdirs/demo_acgan,projection:workdirs/demo_projection

For each run (a training workdir or an exported generator), draws --num images with label vectors
drawn uniformly per attribute (every class equally often, independently of the others), at the
run's final resolution, and asks the shipped attribute classifier (stylegan_jax/assets) which class
each attribute shows. Accuracy = fraction of images whose predicted class is the requested one.
The classifier's own accuracy on held-out real portraits is the first row, for reference.
Prints a table and one JSON line ({"benchmark": "conditional", ...}).
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from tqdm import tqdm

from stylegan_jax import classifier, conditional
from stylegan_jax.data import portraits_tfds, synthetic_portraits
from stylegan_jax.networks import Generator
from stylegan_jax.utils import exit_with_error

FLAGS = flags.FLAGS


def parse_runs(items):
    """["name:path", ...] -> [(name, path)]; clear error for a malformed item."""
    runs = []
    for item in items:
        name, sep, path = item.partition(":")
        if not sep or not name or not path:
            raise ValueError(f"bad run {item!r}: write name:path, e.g. acgan:workdirs/demo_acgan")
        runs.append((name, path))
    return runs


def generate_for_labels(G: Generator, g_params, labels, rng, *, psi: float, batch_size: int):
    """Images [N, H, W, 3] of the final stage for label vectors [N, dim] (psi: toward each label's
    estimated average w, see conditional.estimate_w_avg_for_labels)."""
    @jax.jit
    def draw(z, y, key):
        w = G.apply({"params": g_params}, z, y, method=Generator.mapping)
        if psi != 1.0:
            centre = conditional.estimate_w_avg_for_labels(G, g_params, y, jax.random.fold_in(key, 1))
            w = centre + psi * (w - centre)
        return G.apply({"params": g_params}, w, stage=G.num_stages - 1, method=Generator.synthesis,
                       rngs={"noise": key})

    images = []
    for start in tqdm(range(0, len(labels), batch_size), desc="generate", leave=False):
        key = jax.random.fold_in(rng, start)
        y = jnp.asarray(labels[start:start + batch_size])
        z = jax.random.normal(jax.random.fold_in(key, 2), (len(y), G.latent_size))
        images.append(np.asarray(draw(z, y, key)))
    return np.concatenate(images)


def evaluate_run(path, judge, *, num, batch_size, psi, seed):
    """Per-attribute accuracy of the generator at `path` on uniformly drawn label requests."""
    from stylegan_jax.explore.model import load_generator  # pylint: disable=import-outside-toplevel
    bundle = load_generator(path)
    if bundle.module.label_size != judge.spec.dim:
        raise ValueError(f"{path} takes labels of size {bundle.module.label_size}, the classifier "
                         f"judges {judge.spec.dim} ({judge.spec.describe()}): benchmark runs "
                         "trained on the synthetic portraits with data.use_labels")
    k_labels, k_images = jax.random.split(jax.random.key(seed))
    labels = np.asarray(conditional.sample_labels(k_labels, judge.groups, num))
    images = generate_for_labels(bundle.module, bundle.params, labels, k_images, psi=psi,
                                 batch_size=batch_size)
    return judge.accuracy(images, labels), bundle.provenance


def real_accuracy(judge, num):
    """The classifier on held-out real portraits (the TFDS test split's first `num`)."""
    start = portraits_tfds.DEFAULT_NUM_TRAIN
    drawn = synthetic_portraits.generate(0, range(start, start + num), classifier.INPUT_SHAPE)
    return judge.accuracy(drawn["image"].astype(np.float32) / 127.5 - 1.0, drawn["label"])


def benchmark(runs=(), num: int = 1000, batch_size: int = 100, psi: float = 1.0, seed: int = 0,
              classifier_path: str = classifier.DEFAULT_PATH) -> None:
    """The command with its flags' values (runs: "name:path" items; classifier_path: --classifier):
    judges each run's images, prints the table and the JSON line."""
    runs = parse_runs(runs)
    judge = classifier.load_attribute_classifier(classifier_path)
    results = {"real (held-out)": real_accuracy(judge, min(num, 500))}
    sources = {}
    for name, path in runs:
        results[name], sources[name] = evaluate_run(path, judge, num=num, batch_size=batch_size,
                                                     psi=psi, seed=seed)
    names = judge.spec.names
    print(f"{'variant':18s}" + "".join(f"{n:>12s}" for n in names) + f"{'min':>8s}")
    for variant, accuracy in results.items():
        print(f"{variant:18s}" + "".join(f"{accuracy[n]:12.3f}" for n in names)
              + f"{min(accuracy.values()):8.3f}")
    print(json.dumps({"benchmark": "conditional", "num": num, "psi": psi, "seed": seed,
                      "accuracy": results, "runs": sources}, default=str))


def define_flags() -> None:
    """Defines the command's flags. Only run as a program: tests import several benchmarks into
    one process, and absl refuses a flag name (e.g. --classifier) defined twice."""
    flags.DEFINE_list("runs", [], "name:path pairs; path = training workdir or exported generator .npz.")
    flags.DEFINE_integer("num", 1000, "Images per run.")
    flags.DEFINE_integer("batch_size", 100, "Images per generator call.")
    flags.DEFINE_float("psi", 1.0, "Truncation toward each label's average w (1 = none).")
    flags.DEFINE_integer("seed", 0, "Seed of latents, labels and noise.")
    flags.DEFINE_string("classifier", classifier.DEFAULT_PATH, "Attribute classifier .msgpack.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        benchmark(FLAGS.runs, num=FLAGS.num, batch_size=FLAGS.batch_size, psi=FLAGS.psi, seed=FLAGS.seed,
                  classifier_path=FLAGS.classifier)
    except (ValueError, OSError, ImportError) as e:  # bad input, a missing file or optional package
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
