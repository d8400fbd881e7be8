"""Latent tools (lerp/slerp, attribute vectors, directions, style mixing, base-image truncation)
and generator loading (exported .npz, training workdir)."""
import json
import os

import jax
import numpy as np
import pytest

from stylegan_jax.explore import Explorer, load_generator, random_bundle, save_generator
from stylegan_jax.explore.latent import (Direction, apply_directions, attribute_vector, classifier_tags,
                                         lerp_w, slerp_z, style_mix)


@pytest.fixture(scope="module")
def bundle():
    return random_bundle(seed=3)


@pytest.fixture(scope="module")
def explorer(bundle):
    return Explorer(bundle, fast_compile=True)


def test_lerp_endpoints_are_exact_and_midpoint_is_the_mean():
    rng = np.random.default_rng(0)
    w0, w1 = rng.normal(size=(2, 6, 5)).astype(np.float32)
    path = lerp_w(w0, w1, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(path[0], w0)
    np.testing.assert_array_equal(path[2], w1)
    np.testing.assert_allclose(path[1], (w0 + w1) / 2, rtol=1e-6)


def test_slerp_endpoints_exact_and_the_angle_grows_linearly():
    rng = np.random.default_rng(1)
    z0, z1 = rng.normal(size=(2, 16)).astype(np.float32)
    z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)  # equal norms: slerp keeps the norm
    t = np.array([0.0, 0.25, 0.6, 1.0])
    path = slerp_z(z0, z1, t)
    np.testing.assert_array_equal(path[0], z0)
    np.testing.assert_array_equal(path[-1], z1)
    omega = np.arccos(z0 @ z1 / np.linalg.norm(z0) ** 2)
    for ti, z in zip(t, path):
        np.testing.assert_allclose(np.linalg.norm(z), np.linalg.norm(z0), rtol=1e-5)
        angle = np.arccos(np.clip(z @ z0 / np.linalg.norm(z) / np.linalg.norm(z0), -1, 1))
        np.testing.assert_allclose(angle, ti * omega, atol=1e-3)


def test_attribute_vector_is_the_difference_of_means_and_tags_come_from_a_classifier():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(6, 4, 3)).astype(np.float32)
    tags = classifier_tags(np.zeros((6, 2, 2, 3)), lambda x: np.array([[0, .9], [0, .1], [0, .7],
                                                                        [0, .2], [0, .3], [0, .8]]), 1)
    np.testing.assert_array_equal(tags, [True, False, True, False, False, True])
    expected = w[[0, 2, 5], 0].mean(0) - w[[1, 3, 4], 0].mean(0)
    np.testing.assert_allclose(attribute_vector(w, tags), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="with and without"):
        attribute_vector(w, np.ones(6, bool))
    with pytest.raises(ValueError, match="attribute 2 out of range"):
        classifier_tags(np.zeros((1, 2, 2, 3)), lambda x: np.zeros((1, 2)), 2)
    by_name = lambda x: {"hairband": np.array([0.2, 0.6]), "mouth": np.array([[0.3, 0.7], [0.9, 0.1]]),
                         "hair": np.full((2, 6), 1 / 6)}
    np.testing.assert_array_equal(classifier_tags(np.zeros((2, 2, 2, 3)), by_name, "hairband"), [False, True])
    np.testing.assert_array_equal(classifier_tags(np.zeros((2, 2, 2, 3)), by_name, "mouth"), [True, False])
    with pytest.raises(ValueError, match="two-class attribute"):
        classifier_tags(np.zeros((2, 2, 2, 3)), by_name, "hair")
    with pytest.raises(ValueError, match="unknown attribute 'hat'"):
        classifier_tags(np.zeros((2, 2, 2, 3)), by_name, "hat")


def test_directions_apply_to_their_layers_only():
    w = np.zeros((2, 6, 3), np.float32)
    d = Direction(np.array([1.0, -2.0, 0.5], np.float32), strength=2.0, layers=(1, 3))
    out = apply_directions(w, [d], scale=0.5)
    np.testing.assert_array_equal(out[:, 1:3], np.broadcast_to([1.0, -2.0, 0.5], (2, 2, 3)))
    np.testing.assert_array_equal(out[:, [0, 3, 4, 5]], 0.0)
    with pytest.raises(ValueError, match="layers"):
        Direction(np.zeros(3), layers=(4, 9)).check(6, 3)


def test_style_mixing_takes_coarse_layers_from_one_and_fine_from_the_other(explorer):
    a, b = explorer.w_from_seeds([1]), explorer.w_from_seeds([2])
    mixed = style_mix(a, b, 2)
    np.testing.assert_array_equal(mixed[:, :2], a[:, :2])
    np.testing.assert_array_equal(mixed[:, 2:], b[:, 2:])
    np.testing.assert_array_equal(style_mix(a, b, 0), b)
    with pytest.raises(ValueError, match="crossover layer 9 out of range"):
        style_mix(a, b, 9)
    # The coarse layers decide the layout: mixing changes the image versus either parent.
    images = explorer.synthesize(np.concatenate([a, b, mixed])).images
    assert np.abs(images[2] - images[0]).max() > 1e-2 and np.abs(images[2] - images[1]).max() > 1e-2


def test_truncation_toward_a_base_image(explorer):
    w, base = explorer.w_from_seeds([4]), explorer.w_from_seeds([5])
    np.testing.assert_array_equal(explorer.truncate(w, 1.0, center=base), w)
    np.testing.assert_allclose(explorer.truncate(w, 0.0, center=base), base, atol=1e-7)
    np.testing.assert_allclose(explorer.truncate(w, 0.25, center=base), base + 0.25 * (w - base), atol=1e-6)
    np.testing.assert_allclose(explorer.w_from_seeds([4], psi=0.0),
                               np.broadcast_to(explorer.w_avg, w.shape), atol=1e-7)


def test_exported_generator_round_trips(bundle, explorer, tmp_path):
    path = save_generator(str(tmp_path / "g.npz"), bundle)
    loaded = Explorer.open(path, fast_compile=True)
    assert loaded.describe()["layers"] == explorer.describe()["layers"]
    np.testing.assert_array_equal(loaded.w_avg, explorer.w_avg)
    w = explorer.w_from_seeds([8, 9])
    np.testing.assert_array_equal(loaded.w_from_seeds([8, 9]), w)
    np.testing.assert_array_equal(loaded.synthesize(w).images, explorer.synthesize(w).images)
    with pytest.raises(ValueError, match="add '.npz'"):
        save_generator(str(tmp_path / "g.bin"), bundle)
    np.savez(str(tmp_path / "other.npz"), x=np.zeros(2))
    with pytest.raises(ValueError, match="not an exported generator"):
        load_generator(str(tmp_path / "other.npz"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_generator(str(tmp_path / "nowhere"))


@pytest.mark.slow
def test_loads_the_ema_generator_of_a_training_workdir(tmp_path):
    from experiments.configs import smoke  # pylint: disable=import-outside-toplevel
    from stylegan_jax.training import checkpoint, state as state_lib  # pylint: disable=import-outside-toplevel
    from stylegan_jax.utils import cpu_compiler_options  # pylint: disable=import-outside-toplevel
    config = smoke.get_config()
    G, D = state_lib.build_networks(config)
    state = jax.jit(lambda: state_lib.init_train_state(G, D, config),
                    compiler_options=cpu_compiler_options(True))()
    ema = jax.tree.map(lambda x: x + 0.01, state.g_params)  # distinguishable from g_params
    state = state.replace(g_ema_params=ema, w_avg=state.w_avg + 0.5, step=state.step + 5)
    workdir = tmp_path / "run"
    ckpt = checkpoint.Checkpointer(str(workdir / "checkpoints"), keep=2)
    ckpt.save(state, {"nimg": 40, "kimg": 0.04, "stage": 1})
    ckpt.close()
    (workdir / "config.json").write_text(json.dumps(config.to_dict()))
    for path in (str(workdir), os.path.join(str(workdir), "checkpoints", "5")):
        bundle = load_generator(path)
        assert bundle.provenance["step"] == 5 and bundle.module == G
        np.testing.assert_array_equal(bundle.w_avg, np.asarray(state.w_avg))
        for got, want in zip(jax.tree.leaves(bundle.params), jax.tree.leaves(ema), strict=True):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_generator(str(tmp_path))


def test_attribute_vector_with_controls_removes_a_confounded_attribute():
    # w = 3 e0 (mouth) + 5 e1 (one hair colour of three) + noise, where open mouths mostly come
    # with that hair colour: the plain difference of means carries the hair as well; held fixed
    # as a control, the vector is the mouth's own offset.
    rng = np.random.default_rng(0)
    n = 4000
    hair = rng.integers(0, 3, n)
    mouth = np.where(hair == 2, rng.random(n) < 0.8, rng.random(n) < 0.2)
    w = (3.0 * mouth[:, None] * np.eye(4)[0] + 5.0 * (hair == 2)[:, None] * np.eye(4)[1]
         + 0.1 * rng.standard_normal((n, 4))).astype(np.float32)
    plain = attribute_vector(w, mouth)
    assert plain[1] > 1.5  # confounded: the hair's offset leaks in
    controlled = attribute_vector(w, mouth, controls=hair)
    np.testing.assert_allclose(controlled, [3, 0, 0, 0], atol=0.02)
    # With constant controls the fit is the plain difference of means.
    np.testing.assert_allclose(attribute_vector(w, mouth, controls=np.zeros((n, 1), int)), plain,
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="cannot be told apart"):
        attribute_vector(w, mouth, controls=mouth.astype(int))
