r"""How well projection into W / W+ (stylegan_jax/explore/project.py) redraws images.

    python -m benchmarks.bench_project                      # the bundled demo generator
    python -m benchmarks.bench_project --checkpoint=workdirs/demo --num=16 --steps=300 \
        --spaces=w,w+ --distances=discriminator,pixel --grid=projections.png

Two sets of --num targets, at the model's resolution:

  (a) generated: images the generator draws from held-out w's (seeds 100000 + i; constant noise),
      none of them among the w's the projector estimates its start from;
  (b) real: held-out synthetic portraits (the test split of the training data, the portraits
      after the TFDS train split), rendered at the model's resolution.

Each is projected (all --num images as one batch; each image's optimisation is independent) with
every --spaces x --distances setting. Reported per setting: PSNR of the reconstructions (mean and
min, dB); SWD x 1e3 (metrics/swd.py) between the targets and the reconstructions, beside the SWD
between the targets and as many other images of the same kind (the level at which two different
sets of faces differ); for (a) how far the projected w is from the true one, relative to the
start's distance; for (b) the shipped attribute classifier: the fraction of portraits whose
reconstruction it gives the same class as the original in every attribute, and per attribute;
seconds per projection on this machine (the batch's wall time / --num; the generated set's
includes compiling the step, the real set's, projected next with the same program, does not).
Prints a table and one JSON line ({"benchmark": "project", ...}); --grid writes a PNG of the
first 8 targets of each set, each followed by its reconstructions in every setting (one row each).
"""
import json
import time

import numpy as np
from absl import app, flags

from stylegan_jax import classifier
from stylegan_jax.data import portraits_tfds, synthetic_portraits
from stylegan_jax.explore import project
from stylegan_jax.explore.explorer import Explorer
from stylegan_jax.explore.model import DEMO_GENERATOR, load_networks
from stylegan_jax.metrics.swd import sliced_wasserstein_distance
from stylegan_jax.explore import media
from stylegan_jax.utils import exit_with_error, tile

FLAGS = flags.FLAGS
HELD_OUT_SEED = 100_000  # seeds of the generated targets (a); their "other images" start at 2x


def held_out_portraits(shape, start: int, num: int):
    """(uint8 images [num, H, W, 3], labels) of test-split portraits start .. start + num."""
    first = portraits_tfds.DEFAULT_NUM_TRAIN + start
    drawn = synthetic_portraits.generate(0, range(first, first + num), shape)
    return drawn["image"], drawn["label"]


def agreement(judge, originals, reconstructions):
    """(fraction of images whose every attribute gets the same class, {attribute: fraction})."""
    a, b = judge(originals.astype(np.float32) / 127.5 - 1.0), judge(reconstructions)
    same = {name: np.argmax(a[name], 1) == np.argmax(b[name], 1) for name in judge.spec.names}
    return float(np.mean(np.all(np.stack(list(same.values())), axis=0))), \
        {k: float(v.mean()) for k, v in same.items()}


def run_setting(projector, targets):
    """The projection of targets (uint8) and its wall time."""
    start = time.perf_counter()
    result = projector.project(targets)
    return result, time.perf_counter() - start


def benchmark(checkpoint=None, num: int = 16, steps: int = 300, spaces=("w",), distances=("pixel",),
              w_avg_samples: int = 10000, classifier_path: str = classifier.DEFAULT_PATH,
              grid=None) -> dict:
    """The command with its flags' values; prints the table and the JSON line, returns the record."""
    path = checkpoint or DEMO_GENERATOR
    bundle, disc = load_networks(path)
    explorer = Explorer(bundle)
    shape = explorer.image_shape
    judge = classifier.load_attribute_classifier(classifier_path)
    w_stats = project.w_statistics(explorer, w_avg_samples)

    w_true = explorer.w_from_seeds(range(HELD_OUT_SEED, HELD_OUT_SEED + num))
    generated = explorer.synthesize(w_true).uint8
    other_generated = explorer.synthesize(
        explorer.w_from_seeds(range(2 * HELD_OUT_SEED, 2 * HELD_OUT_SEED + num))).uint8
    real, _ = held_out_portraits(shape, 0, num)
    other_real, _ = held_out_portraits(shape, num, num)
    start_distance = np.linalg.norm(w_true[:, 0] - w_stats[0], axis=-1)
    reference = {"generated": sliced_wasserstein_distance(generated, other_generated)["avg"],
                 "real": sliced_wasserstein_distance(real, other_real)["avg"]}

    rows, pictures = [], {"generated": [generated[:8]], "real": [real[:8]]}
    for space in spaces:
        for distance in distances:
            measure = project.make_distance(distance or None, disc)
            config = project.ProjectionConfig(num_steps=steps, space=space,
                                              w_avg_samples=w_avg_samples, frame_every=0)
            projector = project.Projector(explorer, measure, config, w_stats=w_stats)
            for kind, targets in (("generated", generated), ("real", real)):
                result, seconds = run_setting(projector, targets)
                pictures[kind].append(result.uint8[:8])
                row = {"targets": kind, "space": space, "distance": measure.name,
                       "psnr_mean": float(result.psnr.mean()), "psnr_min": float(result.psnr.min()),
                       "swd": sliced_wasserstein_distance(targets, result.uint8)["avg"],
                       "swd_other_images": reference[kind],
                       "seconds_per_image": seconds / num}
                if kind == "generated":
                    row["w_error_relative"] = float(np.mean(
                        np.linalg.norm(result.w - w_true, axis=-1).mean(1) / start_distance))
                else:
                    row["attributes_all_agree"], row["attribute_agreement"] = agreement(
                        judge, targets, result.images)
                rows.append(row)

    print(f"{'targets':10s}{'space':>6s}{'distance':>14s}{'PSNR':>7s}{'min':>7s}{'SWD':>8s}"
          f"{'SWD ref':>9s}{'w err':>7s}{'attrs':>7s}{'s/img':>7s}")
    for r in rows:
        print(f"{r['targets']:10s}{r['space']:>6s}{r['distance']:>14s}{r['psnr_mean']:7.2f}"
              f"{r['psnr_min']:7.2f}{r['swd']:8.1f}{r['swd_other_images']:9.1f}"
              f"{r.get('w_error_relative', float('nan')):7.2f}"
              f"{r.get('attributes_all_agree', float('nan')):7.3f}{r['seconds_per_image']:7.2f}")
    if grid:
        strips = pictures["generated"] + pictures["real"]
        media.save_png(grid, tile(np.concatenate(strips), len(strips), len(strips[0])),
                       settings={"rows": "generated targets, their reconstructions "
                                         f"({', '.join(f'{r[0]} {r[1]}' for r in settings_of(rows))}),"
                                         " then the same for the real targets"})
    record = {"benchmark": "project", "checkpoint": path, "provenance": explorer.provenance,
              "image_shape": list(shape), "num": num, "steps": steps,
              "w_avg_samples": w_avg_samples, "rows": rows}
    print(json.dumps(record, default=str))
    return record


def settings_of(rows):
    """The (space, distance) settings of the rows, in order, once each."""
    return list(dict.fromkeys((r["space"], r["distance"]) for r in rows))


def define_flags() -> None:
    """Defines the command's flags (only when run as a program)."""
    flags.DEFINE_string("checkpoint", None, "training workdir / step directory (has a "
                        "discriminator) or exported .npz (default: the bundled demo generator)")
    flags.DEFINE_integer("num", 16, "Targets per set.")
    flags.DEFINE_integer("steps", 300, "Optimisation steps per projection.")
    flags.DEFINE_list("spaces", ["w", "w+"], "Spaces to project into: w, w+.")
    flags.DEFINE_list("distances", ["pixel"], "Distances: pixel, discriminator (a checkpoint's D).")
    flags.DEFINE_integer("w_avg_samples", 10000, "Mapped z's for the start w and its spread.")
    flags.DEFINE_string("classifier", classifier.DEFAULT_PATH, "Attribute classifier .msgpack.")
    flags.DEFINE_string("grid", None, "PNG of targets and reconstructions to write (optional).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        benchmark(FLAGS.checkpoint, num=FLAGS.num, steps=FLAGS.steps, spaces=FLAGS.spaces,
                  distances=FLAGS.distances, w_avg_samples=FLAGS.w_avg_samples,
                  classifier_path=FLAGS.classifier, grid=FLAGS.grid)
    except (ValueError, OSError, ImportError) as e:
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
