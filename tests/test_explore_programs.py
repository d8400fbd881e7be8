"""The explorer's compiled programs: batches padded to a few sizes (results as unpadded), noise
modes and later edits sharing programs, and the background warm-up."""
import logging
import threading

import jax
import numpy as np
import pytest

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.edits import Edit, box_mask, edit_deltas
from stylegan_jax.explore.explorer import (BATCH_SIZES, FAST_COMPILE_MAX_PARAMETERS, fast_compile_for,
                                            padded_size, parts, random_noise)

_COMPILES = [0]  # XLA compiles in this process, counted by jax's own compile event


def _count_compile(event, duration, **kwargs):  # pylint: disable=unused-argument
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count_compile)


class compiles:  # pylint: disable=invalid-name
    """`with compiles() as c: ...`; c.count: how many XLA compiles the block ran."""

    def __enter__(self):
        self.start, self.count = _COMPILES[0], None
        return self

    def __exit__(self, *exc):
        self.count = _COMPILES[0] - self.start


@pytest.fixture(scope="module")
def explorer():
    return Explorer(random_bundle(seed=1), fast_compile=True)


def _edit(explorer, layer, amount=1.5):
    info = explorer.layer(layer)
    return Edit(layer, {0: 1.0, 2: -0.5}, box_mask((info.height, info.width), (0.2, 0.2, 0.7, 0.6)),
                amount)


def test_padded_size_picks_the_smallest_batch_size_that_holds_the_batch_and_parts_split_larger():
    assert [padded_size(n) for n in (1, 2, 7, 8)] == [1, 8, 8, 8] and BATCH_SIZES[-1] == 8
    with pytest.raises(ValueError, match="run in parts of 8"):
        padded_size(9)
    assert parts(8) == [slice(0, 8)]
    assert parts(17) == [slice(0, 8), slice(8, 16), slice(16, 17)]


@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_padded_batches_give_the_images_and_features_of_unpadded_ones(explorer, noise_mode):
    """Counts 1..8 (padded to 1 and 8 rows): each row bit for bit what it is in a batch of
    other latents at the same padded size (padding rows change nothing), unedited and edited;
    and, up to float32 rounding (XLA:CPU's kernels differ with the batch size), what a pass
    compiled for the exact unpadded count gives."""
    w = explorer.w_from_seeds(list(range(8)), psi=0.7)
    deltas = edit_deltas([_edit(explorer, "16x8_conv1")], explorer)
    kwargs = dict(noise_mode=noise_mode, noise_seed=5, return_features=True)
    full = {n: (explorer.synthesize(w[:n], **kwargs), explorer.synthesize(w[:n], deltas, **kwargs))
            for n in (1, 8)}
    for n in range(1, 9):
        for got, want in zip((explorer.synthesize(w[:n], **kwargs),
                              explorer.synthesize(w[:n], deltas, **kwargs)), full[padded_size(n)]):
            assert got.images.shape[0] == n
            np.testing.assert_array_equal(got.images, want.images[:n])
            for layer in explorer.layers:
                np.testing.assert_array_equal(got.features[layer.name],
                                              want.features[layer.name][:n])
    # A program compiled for exactly 3 rows (no padding).
    noise, _ = explorer._resolve_noise(noise_mode, 5, batch=3)  # pylint: disable=protected-access
    exact = jax.jit(explorer._unedited_fn)(explorer.params, w[:3], noise)  # pylint: disable=protected-access
    np.testing.assert_allclose(np.asarray(exact[0]), explorer.synthesize(w[:3], **kwargs).images,
                               atol=1e-4)
    if noise_mode == "random":  # the seed draws the noise: another seed, other images
        other = explorer.synthesize(w[:3], noise_mode="random", noise_seed=6).images
        assert np.abs(other - full[8][0].images[:3]).max() > 1e-2


def test_random_noise_is_standard_normal_per_row_layer_and_part(explorer):
    layers = explorer.noise_layers
    big, small = random_noise(layers, 7, 0, 8), random_noise(layers, 7, 0, 3)
    for layer in layers:
        np.testing.assert_array_equal(small[layer.name], big[layer.name][:3])  # rows, not batch
        assert big[layer.name].shape == (8, layer.height, layer.width, 1)
    pooled = np.concatenate([m.ravel() for m in random_noise(layers, 7, 0, 64).values()])
    assert abs(pooled.mean()) < 0.02 and abs(pooled.std() - 1) < 0.02  # ~10^5 draws
    other_part, other_seed = random_noise(layers, 7, 1, 8), random_noise(layers, 8, 0, 8)
    first = layers[-1].name
    assert np.abs(other_part[first] - big[first]).max() > 1 and np.abs(other_seed[first] - big[first]).max() > 1
    assert big[layers[-2].name][0, :4, :4].tolist() != big[first][0, :4, :4].tolist()
    with pytest.raises(ValueError, match="noise seed must be >= 0"):
        explorer.synthesize(explorer.w_from_seeds([1]), noise_mode="random", noise_seed=-1)


def test_larger_batches_run_in_parts_with_the_results_of_one_pass(explorer):
    """19 latents (parts of 8, 8 and 3): with const noise, images, features and an edit's images
    as one pass compiled for exactly 19 rows gives them (float32 rounding); with random noise,
    each part draws its own (an image's noise depends on its row only, not on the batch)."""
    w = explorer.w_from_seeds(list(range(19)), psi=0.7)
    deltas = edit_deltas([_edit(explorer, "16x8_conv1")], explorer)
    noise, _ = explorer._resolve_noise("const", batch=19)  # pylint: disable=protected-access
    images, feats, stats = jax.jit(explorer._unedited_fn)(  # pylint: disable=protected-access
        explorer.params, w, noise)
    got = explorer.synthesize(w, noise_mode="const", return_features=True)
    np.testing.assert_allclose(got.images, np.asarray(images), atol=1e-4)
    for layer in explorer.layers:
        np.testing.assert_allclose(got.features[layer.name], np.asarray(feats[layer.name]),
                                   atol=1e-4)
    all_deltas = {l.name: deltas.get(l.name, np.zeros((1, l.height, l.width, l.channels), np.float32))
                  for l in explorer.layers}
    edited = jax.jit(explorer._full_fn)(explorer.params, w, noise, all_deltas, stats)[0]  # pylint: disable=protected-access
    np.testing.assert_allclose(explorer.synthesize(w, deltas, noise_mode="const").images,
                               np.asarray(edited), atol=1e-4)
    assert np.abs(np.asarray(edited) - np.asarray(images)).max() > 1e-2  # the edit did something
    same = np.repeat(w[:1], 19, axis=0)
    rand = explorer.synthesize(same, noise_mode="random", noise_seed=2).images
    assert np.abs(rand[8] - rand[0]).max() > 1e-2 and np.abs(rand[16] - rand[8]).max() > 1e-2
    nine = explorer.synthesize(same[:9], noise_mode="random", noise_seed=2).images
    np.testing.assert_array_equal(nine[:8], rand[:8])
    # Row 8 runs alone here (the program of 1) and among 8 there: the same noise, up to rounding.
    np.testing.assert_allclose(nine[8], rand[8], atol=1e-3)


def test_new_counts_noise_modes_and_later_edits_reuse_compiled_programs(explorer):
    w = explorer.w_from_seeds(list(range(40)), psi=0.7)
    explorer.synthesize(w[:3])
    explorer.synthesize(w[:9], noise_mode="random", noise_seed=1)  # (its keys' eager ops)
    a, b, c = _edit(explorer, "8x4_conv"), _edit(explorer, "16x8_conv1"), _edit(explorer, "32x16_conv1")
    explorer.synthesize(w[:1], edit_deltas([a], explorer))
    with compiles() as same:
        for n, mode in ((5, "random"), (7, "none"), (2, "const"), (8, "random"), (40, "const"),
                        (37, "random")):  # counts over 8 run in parts of 8
            explorer.synthesize(w[:n], noise_mode=mode, noise_seed=n)
        explorer.w_from_seeds(list(range(100, 137)))
        # Later edits beside the first edited layer's, or none: the same resume program.
        explorer.synthesize(w[:1], edit_deltas([a, c], explorer), noise_mode="random")
        explorer.synthesize(w[:1], edit_deltas([a, b, c], explorer), noise_mode="none")
    assert same.count == 0
    with compiles() as new:  # a new first edited layer: a new program
        explorer.synthesize(w[:1], edit_deltas([c], explorer))
    assert new.count >= 1


def test_warm_up_compiles_its_programs_while_requests_go_on():
    explorer = Explorer(random_bundle(seed=2), fast_compile=True)
    names = [name for name, *_ in explorer.warm_up_programs((1,))]
    assert len(names) == len(set(names)) == 2 + len(explorer.layers)
    assert names[:2] == ["mapping of 1", "synthesis of 1"]
    assert names[2:] == [f"edit on {l.name} of 1" for l in explorer.layers]
    w = explorer.w_from_seeds([4])  # mapping: compiled by this call or waited for
    explorer.start_warm_up((1,))
    assert explorer.start_warm_up((1,)) is explorer.start_warm_up()  # once per explorer
    during = explorer.synthesize(w, edit_deltas([_edit(explorer, "16x8_conv1")], explorer))
    assert explorer.warm_up_done.wait(300)
    assert [entry[0] for entry in explorer.warm_up_log] == names
    assert all(error is None for _, _, error in explorer.warm_up_log)
    with compiles() as after:
        for layer in explorer.layers:
            got = explorer.synthesize(w, edit_deltas([_edit(explorer, layer.name)], explorer),
                                      noise_mode="random", return_features=True)
            assert np.all(np.isfinite(got.images))
        again = explorer.synthesize(w, edit_deltas([_edit(explorer, "16x8_conv1")], explorer))
    assert after.count == 0
    np.testing.assert_array_equal(during.images, again.images)


def test_warm_up_failures_are_logged_and_requests_still_compile(caplog, monkeypatch):
    explorer = Explorer(random_bundle(seed=2), fast_compile=True)
    real = explorer.warm_up_programs

    def broken(batch_sizes):
        _, _, _, args = next(real(batch_sizes))
        return [("broken mapping", ("broken",), lambda *a: 1 / 0, args)]
    monkeypatch.setattr(explorer, "warm_up_programs", broken)
    with caplog.at_level(logging.ERROR, logger="stylegan_jax.explore.explorer"):
        explorer.start_warm_up((1,))
        assert explorer.warm_up_done.wait(120)
    assert "compiling broken mapping failed" in caplog.text and "ZeroDivisionError" in caplog.text
    (name, _, error), = explorer.warm_up_log
    assert name == "broken mapping" and error.startswith("ZeroDivisionError")
    assert explorer.w_from_seeds([1]).shape == (1, explorer.num_layers, explorer.dlatent_size)
    assert not any(t.name == "explorer-warm-up" for t in threading.enumerate())


def test_fast_compile_auto_is_on_for_small_generators_only():
    small = random_bundle(seed=0).params
    assert sum(np.size(x) for x in jax.tree.leaves(small)) < FAST_COMPILE_MAX_PARAMETERS
    large = {"a": np.zeros(FAST_COMPILE_MAX_PARAMETERS - 1, np.float32), "b": np.zeros(1)}
    assert fast_compile_for("auto", small) and not fast_compile_for("auto", large)
    assert fast_compile_for("on", large) and not fast_compile_for("off", small)
    with pytest.raises(ValueError, match="auto, on or off"):
        fast_compile_for("fast", small)
