"""SeFa and GANSpace directions (explore.factorize) against independent computations from the
parameters and the sampled w's, and their use as recipe directions."""
import json
import math

import numpy as np
import pytest

from stylegan_jax.explore import Explorer, Recipe, apply_recipe, random_bundle
from stylegan_jax.explore import factorize


@pytest.fixture(scope="module")
def ex():
    return Explorer(random_bundle(seed=5), fast_compile=True)


def stacked_style_kernels(params, names, dlatent):
    """A [outputs, dlatent]: each named layer's style kernel as used (stored / sqrt(dlatent):
    equalized LR with gain 1), transposed, stacked."""
    synthesis = params["synthesis_network"]
    return np.concatenate([np.asarray(synthesis[n]["style"]["dense"]["kernel"], np.float64).T
                           / math.sqrt(dlatent) for n in names])


def assert_same_axes(vectors, expected, atol=1e-5):
    """Rows equal up to sign."""
    for v, e in zip(vectors, expected):
        assert np.allclose(v, e, atol=atol) or np.allclose(v, -e, atol=atol), (v, e)


@pytest.mark.parametrize("layers", [None, (2, 4), (5, 6)])
def test_sefa_is_the_top_right_singular_vectors_of_the_chosen_style_weights(ex, layers):
    start, stop = layers or (0, ex.num_layers)
    names = [l.name for l in ex.layers if start <= l.index < stop]
    a = stacked_style_kernels(ex.params, names, ex.dlatent_size)
    # Eigenvectors of A^T A are A's right singular vectors; eigenvalues its squared singular values.
    _, s, vt = np.linalg.svd(a)
    k = min(6, len(s))
    found = factorize.sefa(ex, layers, k=k)
    vectors = np.stack([d.vector for d in found.directions])
    assert_same_axes(vectors, vt[:k])
    np.testing.assert_allclose(found.values, s[:k] ** 2, rtol=1e-5)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    assert all(d.layers == (start, stop) and d.strength == 0 for d in found.directions)
    assert found.directions[0].name == f"sefa 0 (layers {start}-{stop - 1})"
    # Each eigenvector satisfies the definition A^T A v = lambda v.
    for d, value in zip(found.directions, found.values):
        np.testing.assert_allclose(a.T @ a @ d.vector, value * d.vector, rtol=1e-4, atol=1e-6)


def test_sefa_uses_only_the_chosen_layers(ex):
    one = factorize.sefa(ex, (3, 4), k=3)
    every = factorize.sefa(ex, None, k=3)
    names = [ex.layers[3].name]
    _, s, vt = np.linalg.svd(stacked_style_kernels(ex.params, names, ex.dlatent_size))
    assert_same_axes([d.vector for d in one.directions], vt[:3])
    assert not np.allclose(one.values, every.values, rtol=1e-3)
    assert abs(float(one.directions[0].vector @ every.directions[0].vector)) < 0.99


def test_sefa_options_scale_half_and_unit_rows(ex):
    layer = ex.layers[1]
    kernel = np.asarray(ex.params["synthesis_network"][layer.name]["style"]["dense"]["kernel"],
                        np.float64) / math.sqrt(ex.dlatent_size)
    scale = kernel[:, :layer.channels].T
    _, s, vt = np.linalg.svd(scale)
    found = factorize.sefa(ex, (1, 2), k=4, scale_only=True)
    assert_same_axes([d.vector for d in found.directions], vt[:4])
    np.testing.assert_allclose(found.values, s[:4] ** 2, rtol=1e-5)
    unit = kernel.T / np.linalg.norm(kernel.T, axis=1, keepdims=True)
    _, s, vt = np.linalg.svd(unit)
    found = factorize.sefa(ex.module, (1, 2), k=4, params=ex.params, unit_rows=True)
    assert_same_axes([d.vector for d in found.directions], vt[:4])
    np.testing.assert_allclose(found.values, s[:4] ** 2, rtol=1e-5)


def test_sefa_scaled_by_the_spread_of_w_counts_standard_deviations(ex):
    """With num_samples, each SeFa direction is its unit eigenvector times the standard deviation
    of the sampled w's projections on it (numpy on the mapped z's of numpy's RandomState)."""
    n = 400
    unit = factorize.sefa(ex, (1, 3), k=3)
    scaled = factorize.sefa(ex, (1, 3), k=3, num_samples=n, seed=7)
    w = ex.mapping(np.random.RandomState(7).randn(n, ex.latent_size).astype(np.float32))[:, 0]
    for u, d in zip(unit.directions, scaled.directions):
        spread = np.std(w.astype(np.float64) @ u.vector.astype(np.float64), ddof=1)
        np.testing.assert_allclose(d.vector, spread * u.vector, rtol=1e-4, atol=1e-7)
        assert d.layers == u.layers and d.name == u.name
    np.testing.assert_allclose(scaled.values, unit.values)
    with pytest.raises(ValueError, match="needs an Explorer"):
        factorize.sefa(ex.module, (1, 3), params=ex.params, num_samples=n)


def test_ganspace_is_the_pca_of_the_sampled_w(ex):
    n = 500
    z = np.random.RandomState(7).randn(n, ex.latent_size).astype(np.float32)
    w = ex.mapping(z)[:, 0].astype(np.float64)
    _, s, vt = np.linalg.svd(w - w.mean(axis=0), full_matrices=False)
    std = s / math.sqrt(n - 1)
    found = factorize.ganspace(ex, (0, 2), k=4, num_samples=n, seed=7)
    np.testing.assert_allclose(found.values, std[:4], rtol=1e-4)
    units = np.stack([d.vector for d in found.directions]) / found.values[:, None]
    assert_same_axes(units, vt[:4], atol=1e-4)
    assert [d.name for d in found.directions][:2] == ["ganspace 0 (layers 0-1)", "ganspace 1 (layers 0-1)"]
    # Projections of w onto the axes have the reported spread.
    np.testing.assert_allclose(np.std((w - w.mean(axis=0)) @ units.T, axis=0, ddof=1), found.values,
                               rtol=1e-4)


def test_bad_ranges_and_k_are_one_line_errors(ex):
    for layers in [(3, 3), (0, 7), (-1, 2), range(0, 4, 2)]:
        with pytest.raises(ValueError, match="layer"):
            factorize.sefa(ex, layers)
    with pytest.raises(ValueError, match="k must be in"):
        factorize.sefa(ex, None, k=ex.dlatent_size + 1)
    with pytest.raises(ValueError, match="params"):
        factorize.sefa(ex.module)


def test_the_top_sefa_direction_changes_the_image_more_than_random_ones(ex):
    # A small step (the linear regime; big steps saturate the random model's images), compared
    # with the mean change of random unit directions: on random models the top direction changes
    # the image 1.1-1.6x as much as the average random one, though not always more than each one.
    w = ex.w_from_seeds([1, 2, 3])
    top = factorize.sefa(ex, (0, 2), k=1).directions[0]
    base = ex.synthesize(w).images

    def change(vector):
        moved = w.copy()
        moved[:, 0:2] += 0.1 * vector
        return float(np.abs(ex.synthesize(moved).images - base).mean())

    randoms = np.random.default_rng(0).standard_normal((8, ex.dlatent_size))
    randoms = (randoms / np.linalg.norm(randoms, axis=1, keepdims=True)).astype(np.float32)
    a = factorize.style_weights(ex.module, ex.params, (0, 2))
    assert np.linalg.norm(a @ top.vector) > np.linalg.norm(a @ randoms.T, axis=0).max()
    random_change = np.mean([change(v) for v in randoms])
    assert change(top.vector) > 1.1 * random_change, (change(top.vector), random_change)


def test_found_directions_round_trip_through_a_recipe(ex):
    found = factorize.sefa(ex, (2, 4), k=2).directions + factorize.ganspace(
        ex, (4, 6), k=1, num_samples=64).directions
    found[0].strength = 1.5
    text = Recipe(directions=found, name="found").dumps()
    loaded = Recipe.from_json(json.loads(text), ex).check(ex)
    for d, e in zip(found, loaded.directions):
        assert (d.name, d.layers, d.strength) == (e.name, e.layers, e.strength)
        np.testing.assert_array_equal(d.vector, e.vector)
    w = ex.w_from_seeds([4])
    _, moved = apply_recipe(ex, loaded, w)
    expected = w.copy()
    expected[:, 2:4] += 1.5 * found[0].vector
    np.testing.assert_allclose(moved, expected, rtol=1e-6)
