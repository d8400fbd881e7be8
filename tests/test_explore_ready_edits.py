"""Ready-made edits: the bundled model's sliders do what their names say (judged by the attribute
classifier), the API lists them, and the exports the guided panel uses (one edit oscillating, a
walk with the recipe on every frame)."""
import numpy as np
import pytest

from experiments import bundle_edits
from stylegan_jax.classifier import load_attribute_classifier
from stylegan_jax.explore import Edit, Explorer, Recipe, apply_recipe, random_bundle
from stylegan_jax.explore import api_models as m
from stylegan_jax.explore.edits import box_mask
from stylegan_jax.explore.handlers import Api
from stylegan_jax.explore.latent import Direction
from stylegan_jax.explore.media import interpolation_frames, oscillation_frames
from stylegan_jax.explore.model import DEMO_GENERATOR
from stylegan_jax.explore.recipe import load_ready_edits, ready_edits_path

FIRST_SEED = 500_000  # neither the file's vectors (from 0) nor its own check (300000) used these


@pytest.fixture(scope="module")
def demo():
    return Explorer.open(DEMO_GENERATOR, fast_compile=True)


def test_bundled_sliders_do_what_their_names_say(demo):
    """Each slider at +1, on 16 seeds the classifier judges without its attribute: the
    classifier's probability of the attribute rises on at least 11 (the file was made keeping
    sliders that raise it on 3/4 of 64 other seeds) and its mean by 0.1."""
    recipe = load_ready_edits(DEMO_GENERATOR, demo)
    judge = load_attribute_classifier()
    names = bundle_edits.slider_attributes(judge.spec)
    assert {e.name for e in recipe.edits} == {"open mouth", "add hairband"}
    assert {"mouth open", "black hair", "pink hair"} <= {d.name for d in recipe.directions}
    for item in recipe.directions + recipe.edits:
        attribute, k = names[item.name]
        seeds = bundle_edits.seeds_without(demo, judge, attribute, k, 16, FIRST_SEED)
        assert len(seeds) == 16
        w = demo.w_from_seeds(seeds)
        one = Recipe([e for e in recipe.edits if e is item], recipe.locators,
                     [d for d in recipe.directions if d is item])
        before = judge(demo.synthesize(w).images)[attribute][:, k]
        after = judge(apply_recipe(demo, one, w)[0].images)[attribute][:, k]
        assert np.sum(after > before) >= 11, (item.name, before, after)
        assert after.mean() - before.mean() >= 0.1, (item.name, before.mean(), after.mean())


def test_ready_edits_sit_beside_the_model_and_the_api_lists_them(demo, tmp_path):
    assert ready_edits_path("a/b/model.npz") == "a/b/model_edits.json"
    assert load_ready_edits(str(tmp_path / "none.npz"), demo) is None
    recipe = load_ready_edits(DEMO_GENERATOR, demo)
    assert Api(demo, ready_edits=recipe).ready_edits()["recipe"] == recipe.to_json()
    assert Api(demo).ready_edits() == {"recipe": None}
    (tmp_path / "other_edits.json").write_text('{"format": "stylegan_jax.recipe", "version": 1, '
                                               '"edits": [{"layer": "nope", "channels": "1"}]}')
    with pytest.raises(ValueError, match="other_edits.json: .*nope.*bundle_edits"):
        load_ready_edits(str(tmp_path / "other.npz"), demo)


@pytest.fixture(scope="module")
def small():
    return Explorer(random_bundle(seed=3), fast_compile=True)


@pytest.fixture(scope="module")
def two_edits(small):
    info = small.layer("16x8_conv1")
    mouth = Edit(info.name, {1: 1.0, 2: 1.0}, box_mask((info.height, info.width), (0.5, 0.2, 0.7, 0.8)),
                 amount=4.0, name="mouth")
    other = Edit("8x4_conv", {0: 1.0}, None, amount=2.0, name="other")
    tilt = Direction(np.linspace(-1, 1, small.dlatent_size).astype(np.float32), 0.5, None, "tilt")
    return Recipe([mouth, other], {}, [tilt])


def test_oscillating_one_edit_holds_the_rest(small, two_edits):
    w = small.w_from_seeds([7])
    frames = oscillation_frames(small, two_edits, w, 4, only="mouth")  # scales 0, 0.5, 1, 0.5
    closed = Recipe([two_edits.edits[0].with_amount(0.0), two_edits.edits[1]], {}, two_edits.directions)
    np.testing.assert_array_equal(frames[0], apply_recipe(small, closed, w)[0].uint8[0])
    np.testing.assert_array_equal(frames[2], apply_recipe(small, two_edits, w)[0].uint8[0])
    assert np.abs(frames[0].astype(int) - frames[2]).max() > 10
    api = Api(small)
    request = m.ExportRequest(kind="gif", seed=7, recipe=two_edits.to_json(), oscillate="smile", frames=2)
    with pytest.raises(ValueError, match="field 'oscillate'.*no edit or direction named 'smile'.*'mouth'"):
        api.export_work(request)


def test_a_walk_applies_the_recipe_on_every_frame(small, two_edits):
    frames, ws = interpolation_frames(small, [3, 4], 3, chunk=2, recipe=two_edits)
    assert len(frames) == 4
    ends = small.w_from_seeds([3, 4])
    np.testing.assert_array_equal(ws[[0, 3]], ends)
    edited = apply_recipe(small, two_edits, ends)[0].uint8.astype(int)
    # Same w; XLA may round a batch of 2 differently by a last bit (1/255).
    assert np.abs(frames[[0, 3]].astype(int) - edited).max() <= 1
    assert np.abs(frames[0].astype(int) - small.synthesize(ends[:1]).uint8[0]).max() > 10
