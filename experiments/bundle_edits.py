"""Ready-made edits for the bundled demo model: attribute sliders and two found feature-map edits.

    python -m experiments.bundle_edits          # writes stylegan_jax/assets/demo_generator_edits.json

The explorer opens a model's ready-made edits from the recipe file beside it (for X.npz:
X_edits.json, recipe.ready_edits_path) and shows them as the sliders of its "Make a character"
panel. This command makes that file for the bundled demo generator:

* Attribute sliders: attribute vectors (explore.latent.attribute_vector: mean w with minus mean w
  without, holding the other attributes' judged classes fixed as controls, so that a slider for
  eye colour does not also carry the hair colours that come with it in the samples) from the
  shipped attribute classifier's verdicts on --num_w generated portraits (seeds from 0, psi 1):
  one per class of each multi-class attribute (hair and eye colour: the portraits judged that
  class against the rest) and one per two-class attribute (mouth open, hairband). Strength 1
  moves a portrait by the whole (controlled) difference of the means.
* Local edits: "open mouth" and "add hairband", found from two labelled examples on the model as
  benchmarks/bench_edits.py finds them (find_recipe with its defaults; its README section "Edits
  from two examples" measures them). Amount 1 is the found amount.

Every slider is checked before it is written: at +1, on --check_seeds seeds judged WITHOUT its
attribute (seeds from CHECK_FIRST_SEED, held out from both steps above), the classifier's
probability of the attribute must rise on at least 3/4 of them, and its mean by at least 0.1
(MIN_RISE); the table also gives on how many of them every other attribute keeps its judged
class (a slider that recolours the hair while opening the mouth shows there). Sliders that fail
are left out
and named in the printed table (tests/test_explore_ready_edits.py repeats the check on the file).
"""
import os

from absl import app
from absl import flags

from stylegan_jax.utils import exit_with_error

_MODEL = flags.DEFINE_string("model", None, "generator .npz (default: the bundled demo model)")
_OUT = flags.DEFINE_string("out", None, "recipe file to write (default: the model's X_edits.json)")
_NUM_W = flags.DEFINE_integer("num_w", 4000, "generated portraits the attribute vectors come from")
_CHECK_SEEDS = flags.DEFINE_integer("check_seeds", 64, "seeds each slider is checked on")

CHECK_FIRST_SEED = 300_000  # held out: vectors use seeds from 0, bench_edits' examples come early
PASS_SHARE = 0.75           # of the check seeds whose probability must rise
MIN_RISE = 0.1              # and the rise of the mean probability over them
LOCAL_EDITS = {"mouth_open": "open mouth", "hairband": "add hairband"}
NOUNS = {"hair_color": "hair", "eye_color": "eyes"}


def slider_name(attribute: str, class_name: str) -> str:
    """The slider of one class: "blue hair", "gold eyes"; two-class ones by their attribute."""
    if attribute in NOUNS:
        return f"{class_name} {NOUNS[attribute]}"
    return attribute.replace("_", " ")


def slider_attributes(spec) -> dict:
    """{direction name: (attribute, class index)} for a classifier's LabelSpec; for the local
    edits, {edit name: (attribute, 1)}."""
    out = {}
    for attribute, classes in spec.attributes:
        if len(classes) == 2:
            out[slider_name(attribute, "")] = (attribute, 1)
        else:
            for k, class_name in enumerate(classes):
                out[slider_name(attribute, class_name)] = (attribute, k)
    out.update({edit: (attribute, 1) for attribute, edit in LOCAL_EDITS.items()})
    return out


def seeds_without(explorer, judge, attribute: str, k: int, count: int, first: int):
    """The first `count` seeds from `first` whose most probable class of `attribute` is not k."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    found, seed = [], first
    while len(found) < count and seed < first + 100 * count:
        seeds = list(range(seed, seed + 64))
        images = explorer.synthesize(explorer.w_from_seeds(seeds)).images
        found += [s for s, c in zip(seeds, np.argmax(judge(images)[attribute], axis=1)) if c != k]
        seed += 64
    return found[:count]


def check_slider(explorer, judge, recipe, name: str, attribute: str, k: int, count: int):
    """(share of `count` seeds judged without the attribute on which slider `name` at +1 raises
    its probability, mean probability before, after, share of them on which every other
    attribute keeps its judged class)."""
    # pylint: disable=import-outside-toplevel
    import numpy as np
    from stylegan_jax.explore.recipe import Recipe, apply_recipe
    seeds = seeds_without(explorer, judge, attribute, k, count, CHECK_FIRST_SEED)
    w = explorer.w_from_seeds(seeds)
    one = Recipe([e for e in recipe.edits if e.name == name], recipe.locators,
                 [d for d in recipe.directions if d.name == name])
    judged_before = judge(explorer.synthesize(w).images)
    judged_after = judge(apply_recipe(explorer, one, w)[0].images)
    before, after = judged_before[attribute][:, k], judged_after[attribute][:, k]
    kept = np.all([np.argmax(judged_before[a], axis=1) == np.argmax(judged_after[a], axis=1)
                   for a in judged_before if a != attribute], axis=0)
    return (float(np.mean(after > before)), float(before.mean()), float(after.mean()),
            float(np.mean(kept)))


def make_ready_edits(explorer, judge, num_w: int, check_seeds: int):
    """(the checked Recipe, rows of the table: (name, kind, share, before, after, others kept,
    kept))."""
    # pylint: disable=import-outside-toplevel
    import numpy as np
    from benchmarks.bench_edits import find_recipe
    from stylegan_jax.explore.latent import Direction, attribute_vector
    from stylegan_jax.explore.recipe import Recipe

    seeds = np.arange(num_w)
    w = np.concatenate([explorer.w_from_seeds(seeds[i:i + 256]) for i in range(0, num_w, 256)])
    probabilities = {}
    for i in range(0, num_w, 256):
        for attribute, p in judge(explorer.synthesize(w[i:i + 256]).images).items():
            probabilities.setdefault(attribute, []).append(p)
    recipe = Recipe(name="ready-made edits")
    names = slider_attributes(judge.spec)
    classes = {a: np.argmax(np.concatenate(p), axis=1) for a, p in probabilities.items()}
    for name, (attribute, k) in names.items():
        if name in LOCAL_EDITS.values():
            continue
        judged = classes[attribute] == k
        if judged.sum() < 10 or (~judged).sum() < 10:  # too few portraits judged either way
            continue
        others = np.stack([classes[a] for a in sorted(classes) if a != attribute], axis=1)
        recipe.directions.append(Direction(attribute_vector(w, judged, controls=others), 1.0,
                                           None, name))
    for attribute, name in LOCAL_EDITS.items():
        try:
            found, _ = find_recipe(explorer, judge, attribute)
        except RuntimeError:  # no edit found on the model: no slider
            continue
        edit, = found.edits
        edit.name = name
        recipe.edits.append(edit)
        recipe.locators.update(found.locators)
    rows, kept = [], Recipe(locators={}, name=recipe.name)
    for kind, item in [("direction", d) for d in recipe.directions] + [("edit", e) for e in recipe.edits]:
        attribute, k = names[item.name]
        share, before, after, others = check_slider(explorer, judge, recipe, item.name,
                                                    attribute, k, check_seeds)
        ok = share >= PASS_SHARE and after - before >= MIN_RISE
        rows.append((item.name, kind, share, before, after, others, ok))
        if ok and kind == "direction":
            kept.directions.append(item)
        elif ok:
            kept.edits.append(item)
            kept.locators[item.locator] = recipe.locators[item.locator]
    return kept, rows


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # pylint: disable=import-outside-toplevel  (keep --help fast)
    from stylegan_jax.atomic import write_text_atomically
    from stylegan_jax.classifier import load_attribute_classifier
    from stylegan_jax.explore import Explorer
    from stylegan_jax.explore.model import DEMO_GENERATOR
    from stylegan_jax.explore.recipe import ready_edits_path
    try:
        model = _MODEL.value or DEMO_GENERATOR
        explorer = Explorer.open(model)
        recipe, rows = make_ready_edits(explorer, load_attribute_classifier(), _NUM_W.value,
                                        _CHECK_SEEDS.value)
        out = _OUT.value or ready_edits_path(model)
        write_text_atomically(out, recipe.dumps() + "\n")  # compact: vectors and masks
    except (FileNotFoundError, ValueError) as e:
        exit_with_error(e)
    print(f"{'slider':<16}{'kind':<11}{'rises on':>9}{'p before':>10}{'p after':>9}"
          f"{'others kept':>13}  kept")
    for name, kind, share, before, after, others, ok in rows:
        print(f"{name:<16}{kind:<11}{share:>9.0%}{before:>10.2f}{after:>9.2f}{others:>13.0%}  "
              f"{'yes' if ok else 'no'}")
    print(f"wrote {out} ({os.path.getsize(out) / 1024:.0f} KB)")


if __name__ == "__main__":
    app.run(main)
