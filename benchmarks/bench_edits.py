r"""Do edits found from two labelled examples work on other images?

    python -m benchmarks.bench_edits --model=workdirs/demo_long [--classifier=shipped] \
        [--attributes=mouth_open,hairband] [--seeds=100] [--out=bench_edits_out]

For each attribute, as a person would in the UI, using only two generated images:
1. Labelled examples: the first seed judged WITH the attribute and the first judged WITHOUT it.
2. Marked region: where the attribute shows in the synthetic portraits -- cells that change
   between twins drawn with and without it (stylegan_jax.data.synthetic_portraits.twin), at least
   in a quarter of 64 twins. It is "painted" on both examples.
3. A locator (--locator-layer, default auto: of the layers from 1/8 to 1/2 of the image height,
   the one whose channels follow the region best on the two examples): its 2 channels
   (--locator-top-k) most similar to the region, with the region as its template
   (stylegan_jax.explore.locate: the part keeps its painted size wherever it is found).
4. For every layer below the output resolution and the first layer at it (--edit-layers): the
   edit proposed by find.propose_edit (top 8 channels), its mask moved by the locator, with the
   examples' colours in the region as its contrast (--contrast; explore.edits, "Contrast": the
   edit reverses on images that already have the WITH colour there, e.g. a light-blue band on
   blue hair). On the example WITHOUT the
   attribute, the smallest amount scale (of 0.5..4) that makes the judge see the attribute is
   found; the layer whose flip is most local wins, and the recipe uses --margin (3.0) x that
   scale (a margin for other images).
Then on held-out seeds judged WITHOUT the attribute (until --seeds are found, from --first-seed =
100000), the recipe is applied and measured: success = the judge now sees the attribute; locality
= share of the summed |pixel change| inside the located region (the located part at the
locator's layer, upsampled to the image; its share of the image is reported as located_area).
Target: success >= 80% and locality >= 70% (pixel-weighted over all seeds). For the mouth, the
share of seeds whose located centre lies in the ground-truth mouth-box range (below) checks the
locator against the synthetic set's boxes. The defaults (margin, locator channels) were chosen on
seeds from 200000 (--first-seed=200000), so the figures on seeds from 100000 are held out.
Edits are rendered as the explorer renders them: with the unedited image's instance-norm
statistics (explore.explorer, "Local edits").

Judges: by default the shipped attribute classifier (stylegan_jax.classifier); --classifier may
name another .msgpack of it, or 'module:attr', any callable images [-1, 1] [N, H, W, 3] ->
{attribute: probabilities [N] or [N, 2]} (find_recipe/evaluate take any such callable).
With --classifier=dark (or when no classifier is shipped), "mouth open" is judged by the fraction
of dark pixels (luminance < 0.3) inside the box that holds the synthetic set's ground-truth mouth
boxes (their 2nd-98th percentile range): open mouths have a dark interior, closed ones a light
line. Its threshold is calibrated on real synthetic portraits (midpoint of the open and closed
medians) and its accuracy there is reported. Hairband has no fallback judge. Prints a table and a
JSON line; writes the recipes, a before/after grid and results.json to --out.
"""
import dataclasses
import importlib
import json
import os

import numpy as np
from absl import app, flags
from tqdm import tqdm

from stylegan_jax.data import synthetic_portraits as portraits
from stylegan_jax.explore import Explorer
from stylegan_jax.explore.edits import resize_mask
from stylegan_jax.explore.find import channel_similarity, propose_edit
from stylegan_jax.explore.latent import classifier_tags
from stylegan_jax.explore.locate import build_locator
from stylegan_jax.explore.recipe import Recipe, apply_recipe
from stylegan_jax.training.samples import save_grid
from stylegan_jax.utils import exit_with_error

SCALES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
DARK_LUMINANCE = 0.3
FLAGS = flags.FLAGS


def luminance(images) -> np.ndarray:
    """[N, H, W] luminance in [0, 1] of images in [-1, 1]."""
    return (np.asarray(images, np.float32) + 1) / 2 @ np.array([0.299, 0.587, 0.114], np.float32)


def mouth_box_range(shape, num_examples: int = 400):
    """(rows, cols) slices of the image holding the synthetic set's ground-truth mouth boxes
    (2nd percentile of their tops/lefts to 98th of their bottoms/rights), and the data."""
    data = portraits.generate(12345, range(num_examples), shape)
    boxes = data["boxes"][:, portraits.BOX_NAMES.index("mouth")]
    lo, hi = np.percentile(boxes[:, :2], 2, axis=0), np.percentile(boxes[:, 2:], 98, axis=0)
    h, w = shape
    return (slice(int(np.floor(lo[0] * h)), int(np.ceil(hi[0] * h))),
            slice(int(np.floor(lo[1] * w)), int(np.ceil(hi[1] * w)))), data


class DarkMouthJudge:
    """P(mouth open) = 1 if the dark-pixel fraction in the data's mouth box exceeds a threshold."""

    def __init__(self, shape):
        (self.rows, self.cols), data = mouth_box_range(shape)
        fractions = self.dark_fraction(data["image"].astype(np.float32) / 127.5 - 1)
        is_open = np.array([a["mouth_open"] == "1" for a in data["attributes"]])
        self.threshold = 0.5 * (np.median(fractions[is_open]) + np.median(fractions[~is_open]))
        self.accuracy = float(np.mean((fractions > self.threshold) == is_open))

    def dark_fraction(self, images) -> np.ndarray:
        return (luminance(images)[:, self.rows, self.cols] < DARK_LUMINANCE).mean(axis=(1, 2))

    def __call__(self, images):
        return {"mouth_open": (self.dark_fraction(images) > self.threshold).astype(np.float32)}


def load_classifier(spec: str):
    """The judge: 'shipped' (the bundled attribute classifier), a .msgpack path of one, or the
    callable named 'module:attribute'."""
    from stylegan_jax import classifier  # pylint: disable=import-outside-toplevel
    if spec == "shipped":
        return classifier.load_attribute_classifier()
    if spec.endswith(".msgpack"):
        return classifier.load_attribute_classifier(spec)
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"--classifier must be 'shipped', 'dark', a .msgpack path or "
                         f"'package.module:function', got {spec!r}")
    return getattr(importlib.import_module(module), name)


def attribute_region(attribute: str, shape, num_twins: int = 64) -> np.ndarray:
    """bool [H, W]: pixels that change between twins with and without the attribute in >= 1/4."""
    changed = np.zeros(shape, np.float32)
    for i in range(num_twins):
        with_, without = (portraits.generate(777, [i], shape, **{attribute: v})["image"][0]
                          for v in (1, 0))
        changed += np.abs(with_.astype(np.float32) - without).sum(-1) > 30
    return changed / num_twins >= 0.25


def _judged(judge, images, attribute) -> np.ndarray:
    return classifier_tags(images, judge, attribute)


def _judged_seeds(explorer: Explorer, judge, seeds, attribute) -> np.ndarray:
    return _judged(judge, explorer.synthesize(explorer.w_from_seeds(seeds)).images, attribute)


def _locality(before, after, located_mask) -> np.ndarray:
    change = np.abs(after - before).sum(-1)
    return (change * located_mask).sum((1, 2)), change.sum((1, 2))


def choose_locator_layer(explorer: Explorer, features, masks, top_k: int = 4) -> str:
    """The layer from 1/8 to 1/2 of the image height whose top_k channels follow the marked part
    best: the highest mean correlation with it on the examples (what a person looks for when
    picking channels in the UI). features: {layer: [examples, h, w, c]}; masks: layer -> mask."""
    best = None
    for info in explorer.layers:
        if not explorer.image_shape[0] // 8 <= info.height <= explorer.image_shape[0] // 2:
            continue
        mask = masks(info.name)
        if mask.sum() == 0 or mask.all():
            continue
        similarity = np.mean([channel_similarity(f, mask) for f in features[info.name]], axis=0)
        score = float(np.mean(np.sort(similarity)[::-1][:top_k]))
        if best is None or score > best[0]:
            best = (score, info.name)
    if best is None:
        raise RuntimeError("the marked part covers no cell of any locator layer")
    return best[1]


def first_examples(explorer: Explorer, judge, attribute: str) -> dict:
    """{True: the first seed judged with the attribute, False: the first judged without it}."""
    examples = {}
    for start in range(0, 2000, 25):
        seeds = range(start, start + 25)
        judged = _judged_seeds(explorer, judge, seeds, attribute)
        for seed, has in zip(seeds, judged):
            examples.setdefault(bool(has), seed)
        if len(examples) == 2:
            return examples
    raise RuntimeError(f"the judge never saw both values of {attribute} in 2000 seeds")


def default_edit_layers(explorer: Explorer) -> list:
    """All layers below the output resolution, and the first layer at it.

    Edits below the output resolution change what the network draws, but two upsampling
    convolutions spread a small part (a 5x6-pixel mouth at 64x32) over about twice its size. The
    first layer at the output resolution still passes through one convolution and stays local;
    the last one comes out as painted colour (benchmarks/README.md, "Edits from two examples").
    """
    below = [l.name for l in explorer.layers[1:] if l.height < explorer.image_shape[0]]
    at = [l.name for l in explorer.layers if l.height == explorer.image_shape[0]]
    return below + at[:1]


def find_recipe(explorer: Explorer, judge, attribute: str, locator_layer: str = "auto",
                top_k: int = 8, edit_layers=None, margin: float = 3.0, locator_top_k: int = 2,
                max_shift=None, examples=None, contrast: bool = True):
    """A recipe from two judged examples (see the module docstring), and what was chosen.

    locator_layer: a layer name, or "auto" (choose_locator_layer).
    edit_layers: candidate layers (default: default_edit_layers).
    examples: (seed WITH the attribute, seed WITHOUT it), as a person picks them in the UI;
    default: first_examples. Both are checked with the judge.
    contrast: record the examples' colours in the region (find.propose_edit images), so the edit
    reverses on images that already have the WITH colour there (explore.edits, "Contrast").
    """
    if edit_layers is None:
        edit_layers = default_edit_layers(explorer)
    if examples is not None:
        seeds = list(examples)
        judged = _judged_seeds(explorer, judge, seeds, attribute)
        if not (judged[0] and not judged[1]):
            raise ValueError(f"examples {seeds[0]},{seeds[1]}: the judge must see {attribute} on "
                             f"the first seed and not on the second; it saw it: "
                             f"{bool(judged[0])}, {bool(judged[1])}")
        examples = {True: seeds[0], False: seeds[1]}
    else:
        examples = first_examples(explorer, judge, attribute)
    w = explorer.w_from_seeds([examples[True], examples[False]])
    features = explorer.features(w)
    region = attribute_region(attribute, explorer.image_shape).astype(np.float32)

    def at(name):  # the region painted at a layer's resolution: cells at least 1/4 covered
        info = explorer.layer(name)
        return (resize_mask(region, (info.height, info.width)) >= 0.25).astype(np.float32)

    if locator_layer == "auto":
        locator_layer = choose_locator_layer(explorer, features, at, locator_top_k)
    loc_mask = at(locator_layer)
    locator = build_locator(locator_layer, list(features[locator_layer]), [loc_mask, loc_mask],
                            top_k=locator_top_k, name=attribute, max_shift=max_shift)
    anchor = tuple(locator.locate(features[locator_layer]).centroid.mean(axis=0).tolist())
    example_images = explorer.synthesize(w).images
    before = example_images[1:]
    located = locator.locate(features[locator_layer][1:]).mask_at(explorer.image_shape)
    best = None
    for info in map(explorer.layer, edit_layers):
        mask = at(info.name)
        if not mask.any():
            continue
        edit = propose_edit(info.name, features[info.name][0], features[info.name][1], mask,
                            top_k=top_k, name=attribute, images=example_images if contrast else None)
        edit = dataclasses.replace(edit, locator=attribute, anchor=anchor)
        recipe = Recipe([edit], {attribute: locator}, name=attribute)
        for scale in SCALES:
            after = apply_recipe(explorer, recipe, w[1:], amount_scale=scale)[0].images
            if _judged(judge, after, attribute)[0]:
                inside, total = _locality(before, after, located)
                score = float(inside[0] / max(total[0], 1e-12))
                if best is None or score > best[0]:
                    best = (score, edit.with_amount(edit.amount * scale * margin), info.name, scale)
                break
    if best is None:
        raise RuntimeError(f"no layer's proposed edit adds {attribute} to the example seed "
                           f"{examples[False]} at amount scales up to {SCALES[-1]}")
    recipe = Recipe([best[1]], {attribute: locator}, name=f"add {attribute}")
    return recipe, {"examples": {"with": examples[True], "without": examples[False]},
                    "edit_layer": best[2], "example_scale": best[3], "example_locality": best[0],
                    "locator_layer": locator_layer, "locator_channels": sorted(locator.channels),
                    "edit_channels": sorted(best[1].channels), "amount": best[1].amount}


def evaluate(explorer: Explorer, judge, attribute: str, recipe: Recipe, num_seeds: int,
             first_seed: int = 100_000, batch: int = 25):
    """Success rate and locality on held-out seeds judged without the attribute."""
    locator = recipe.locators[attribute]
    found, successes, inside_sum, total_sum, per_seed, seen, area = [], 0, 0.0, 0.0, [], 0, 0.0
    grid, on_mouth = None, 0  # before/after of the first seeds, for a picture
    (rows, cols), _ = mouth_box_range(explorer.image_shape)
    progress = tqdm(total=num_seeds, desc=f"evaluating {attribute}")
    seed = first_seed
    while len(found) < num_seeds and seen < 20 * num_seeds:
        seeds = list(range(seed, seed + batch))
        seed, seen = seed + batch, seen + batch
        w = explorer.w_from_seeds(seeds)
        before = explorer.synthesize(w).images
        keep = ~_judged(judge, before, attribute)
        keep &= np.cumsum(keep) <= num_seeds - len(found)
        if not keep.any():
            continue
        w, before = w[keep], before[keep]
        after = apply_recipe(explorer, recipe, w)[0].images
        location = locator.locate(explorer.features(w, locator.layer))
        if attribute == "mouth_open":  # does the locator find the mouth where the data has it?
            h, w_ = explorer.image_shape
            cy, cx = location.centroid[:, 0] * h, location.centroid[:, 1] * w_
            on_mouth += int(np.sum((cy >= rows.start) & (cy <= rows.stop) & (cx >= cols.start) & (cx <= cols.stop)))
        located = location.mask_at(explorer.image_shape)
        inside, total = _locality(before, after, located)
        area += float(located.mean(axis=(1, 2)).sum())
        successes += int(_judged(judge, after, attribute).sum())
        inside_sum, total_sum = inside_sum + inside.sum(), total_sum + total.sum()
        per_seed += list(inside / np.maximum(total, 1e-12))
        found += [s for s, k in zip(seeds, keep) if k]
        progress.update(int(keep.sum()))
        if grid is None:
            grid = np.concatenate([before[:8], after[:8]])
    progress.close()
    return {"seeds": len(found), "seeds_looked_at": seen, "success_rate": successes / max(len(found), 1),
            "locality": inside_sum / max(total_sum, 1e-12),
            "median_seed_locality": float(np.median(per_seed)) if per_seed else float("nan"),
            "located_area": area / max(len(found), 1),
            **({"located_in_data_mouth_box": on_mouth / max(len(found), 1)}
               if attribute == "mouth_open" else {})}, grid


def benchmark(model: str, *, classifier: str = "shipped", attributes=None, seeds: int = 100,
              first_seed: int = 100_000, locator_layer: str = "auto", edit_layers=None,
              out: str = "bench_edits_out", margin: float = 3.0, top_k: int = 8, locator_top_k: int = 2,
              locator_max_shift: int | None = None, examples=None, contrast: bool = True) -> None:
    """The command with its flags' values (the same names with underscores, the same defaults;
    attributes and edit_layers are lists, examples the pair (WITH, WITHOUT) of seeds): finds and
    measures a recipe per attribute, prints the table and the JSON line, writes the files to out."""
    explorer = Explorer.open(model)
    judge, judge_info = None, {}
    if classifier == "shipped":
        from stylegan_jax.classifier import DEFAULT_PATH  # pylint: disable=import-outside-toplevel
        if not os.path.isfile(DEFAULT_PATH):
            classifier = "dark"
    if classifier != "dark":
        judge, judge_info = load_classifier(classifier), {"judge": classifier}
    else:
        dark = DarkMouthJudge(explorer.image_shape)
        judge, judge_info = dark, {"judge": "dark pixels in the data's mouth box",
                                   "threshold": float(dark.threshold), "accuracy_on_real": dark.accuracy}
    has_classifier = classifier != "dark"
    attributes = list(attributes or (("mouth_open", "hairband") if has_classifier else ("mouth_open",)))
    if examples and len(attributes) != 1:
        raise ValueError(f"--examples names seeds for one attribute: add --attributes=NAME "
                         f"(got {', '.join(attributes)})")
    if "hairband" in attributes and not has_classifier:
        raise ValueError("judging hairband needs --classifier (only mouth_open has a fallback judge)")
    os.makedirs(out, exist_ok=True)
    results = {"model": explorer.provenance, **judge_info}
    for attribute in attributes:
        try:
            recipe, chosen = find_recipe(explorer, judge, attribute, locator_layer, edit_layers=edit_layers,
                                         margin=margin, top_k=top_k, locator_top_k=locator_top_k,
                                         max_shift=locator_max_shift, examples=examples, contrast=contrast)
        except RuntimeError as e:  # no edit found on the examples: a failed attribute, not a crash
            results[attribute] = {"passed": False, "error": str(e)}
            continue
        metrics, grid = evaluate(explorer, judge, attribute, recipe, seeds, first_seed)
        metrics["passed"] = bool(metrics["success_rate"] >= 0.8 and metrics["locality"] >= 0.7)
        results[attribute] = {**chosen, **metrics}
        with open(os.path.join(out, f"recipe_{attribute}.json"), "w", encoding="utf-8") as f:
            f.write(recipe.dumps())
        if grid is not None:
            save_grid(grid, os.path.join(out, f"before_after_{attribute}.png"), 2, len(grid) // 2)
    print(f"{'attribute':<12}{'edit layer':<16}{'locator layer':<16}{'seeds':>6}{'success':>9}"
          f"{'locality':>10}{'located area':>14}{'pass':>6}")
    for attribute in attributes:
        r = results[attribute]
        if "error" in r:
            print(f"{attribute:<12}FAILED: {r['error']}")
            continue
        print(f"{attribute:<12}{r['edit_layer']:<16}{r['locator_layer']:<16}{r['seeds']:>6}"
              f"{r['success_rate']:>9.1%}{r['locality']:>10.1%}{r['located_area']:>14.1%}"
              f"{'yes' if r['passed'] else 'no':>6}")
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, default=float)
    print(json.dumps({"benchmark": "explorer_edits", **results}, default=float))


def _seed_pair(examples) -> bool:
    return examples is None or (len(examples) == 2 and all(seed.isdigit() for seed in examples))


def define_flags() -> None:
    """Defines the command's flags. Only run as a program: tests import several benchmarks into
    one process, and absl refuses a flag name (e.g. --out) defined twice."""
    flags.DEFINE_string("model", None, "trained workdir or exported .npz", required=True)
    flags.DEFINE_string("classifier", "shipped", "'shipped', 'dark' (fallback mouth judge), a classifier "
                        ".msgpack, or module:callable")
    flags.DEFINE_list("attributes", None, "default: mouth_open,hairband with a classifier, else mouth_open")
    flags.DEFINE_integer("seeds", 100, "held-out seeds judged WITHOUT the attribute to measure on")
    flags.DEFINE_integer("first-seed", 100_000, "held-out seeds start here (the figures use 100000; "
                         "settings were chosen on 200000)")
    flags.DEFINE_string("locator-layer", "auto", "a layer, or 'auto': the layer whose channels follow the "
                        "marked part best on the examples")
    flags.DEFINE_list("edit-layers", None, "comma-separated candidate layers (default: all below the output "
                      "resolution and the first layer at it)")
    flags.DEFINE_string("out", "bench_edits_out", "folder for the recipes, grids and results.json")
    flags.DEFINE_float("margin", 3.0, "the recipe's amount = margin x the scale that flipped the example")
    flags.DEFINE_integer("top-k", 8, "channels in the proposed edit")
    flags.DEFINE_integer("locator-top-k", 2, "channels of the locator")
    flags.DEFINE_integer("locator-max-shift", None, "cells the located part may move from where it was "
                         "painted (default: anywhere)")
    flags.DEFINE_list("examples", None, "WITH,WITHOUT: the two example seeds (default: the first seed judged "
                      "with the attribute and the first judged without); one attribute only")
    flags.register_validator("examples", _seed_pair, "--examples takes two seeds, WITH,WITHOUT, e.g. 5,13")
    flags.DEFINE_bool("contrast", True, "record the examples' colours in the region, so the edit reverses on "
                      "images that already have the WITH colour there (explore.edits, 'Contrast'); "
                      "--nocontrast for the plain edit")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    examples = FLAGS.examples and tuple(int(seed) for seed in FLAGS.examples)
    try:
        benchmark(FLAGS.model, classifier=FLAGS.classifier, attributes=FLAGS.attributes, seeds=FLAGS.seeds,
                  first_seed=FLAGS["first-seed"].value, locator_layer=FLAGS["locator-layer"].value,
                  edit_layers=FLAGS["edit-layers"].value, out=FLAGS.out, margin=FLAGS.margin,
                  top_k=FLAGS["top-k"].value, locator_top_k=FLAGS["locator-top-k"].value,
                  locator_max_shift=FLAGS["locator-max-shift"].value, examples=examples, contrast=FLAGS.contrast)
    except (ValueError, OSError, ImportError) as e:  # bad input, a missing file or optional package
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
