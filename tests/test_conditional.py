"""Conditioning: label layouts, the ACGAN / projection losses against numpy, R1 with labels, errors."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax import conditional, losses
from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.data.synthetic_portraits import LABEL_SPEC
from stylegan_jax.networks import Discriminator, Generator
from helpers import assert_matches_finite_differences

ONE_OF_K = LabelSpec({"hair_color": ("black", "brown", "blonde", "red", "blue", "pink")})
TINY = dict(base_shape=(4, 2), num_stages=2, fmap_base=16, fmap_max=4)


def softplus(x):
    return np.log1p(np.exp(x))


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def tiny_labels(spec, n, rng, unspecified=()):
    """Random one-hot label vectors; blocks of the (example, attribute) pairs in `unspecified` are 0."""
    values = [{name: int(rng.integers(len(classes))) for name, classes in spec.attributes} for _ in range(n)]
    for i, name in unspecified:
        del values[i][name]
    return np.stack([spec.encode(v, allow_missing=True) for v in values])


def test_attribute_groups_follow_the_label_layout():
    groups = conditional.attribute_groups(LABEL_SPEC)
    assert groups == (("hair_color", 0, 6), ("eye_color", 6, 5), ("mouth_open", 11, 2), ("hairband", 13, 2))
    assert conditional.label_size(LABEL_SPEC) == 15 == LABEL_SPEC.column("hairband", "1") + 1
    assert conditional.label_size(None) == 0


def random_variables(init_fn, rng, scale=0.5):
    """Variables of init_fn's shapes drawn from N(0, scale^2): no compiled init needed."""
    shapes = jax.eval_shape(init_fn)
    return jax.tree_util.tree_map(lambda s: (scale * rng.standard_normal(s.shape)).astype(s.dtype), shapes)


@pytest.mark.parametrize("spec", [ONE_OF_K, LABEL_SPEC], ids=["one_of_k", "multi_hot"])
def test_label_embedding_and_head_shapes(spec):
    rng = np.random.default_rng(0)
    G = Generator.create(latent_size=8, dlatent_size=8, mapping_fmaps=8, mapping_layers=2, label_size=spec.dim, **TINY)
    labels = tiny_labels(spec, 4, rng)
    z = jnp.ones((4, 8))
    gv = random_variables(lambda: G.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, z, labels,
                                         stage=1), rng)
    assert gv["params"]["mapping_network"]["label_embedding"].shape == (spec.dim, 8)
    w = jax.jit(lambda v, y: G.apply(v, z, y, method=Generator.mapping))
    assert w(gv, labels).shape == (4, G.num_layers, 8)
    assert not np.allclose(w(gv, labels)[0], w(gv, labels[::-1])[0])  # labels steer w
    images = jnp.zeros((4, 8, 4, 3))
    for conditioning, extra in [("projection", "4x2_projection"), ("acgan", "4x2_classifier"),
                                ("switch", None), ("none", None)]:
        D = Discriminator(label_size=spec.dim, conditioning=conditioning, mbstd_group_size=2, **TINY)
        dv = jax.eval_shape(lambda: D.init(jax.random.key(2), images, labels, stage=1))
        out = jax.eval_shape(lambda v: D.apply(v, images, labels, stage=1), dv)
        dense1 = dv["params"]["4x2_dense1"]["kernel"].shape
        assert dense1 == (4, spec.dim if conditioning == "switch" else 1)
        if conditioning == "projection":
            assert dv["params"][extra].shape == (spec.dim, 4)
        if conditioning == "acgan":
            assert dv["params"][extra]["kernel"].shape == (4, spec.dim)
            assert out[0].shape == (4,) and out[1].shape == (4, spec.dim)
        else:
            assert out.shape == (4,)


@pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
def test_classification_loss_matches_numpy(kind):
    rng = np.random.default_rng(1)
    labels = tiny_labels(LABEL_SPEC, 3, rng, unspecified=[(0, "eye_color"), (1, "eye_color"), (2, "hairband")])
    logits = rng.standard_normal((3, LABEL_SPEC.dim)).astype(np.float32) * 2
    expected = 0.0
    for name, classes in LABEL_SPEC.attributes:
        cols = [LABEL_SPEC.column(name, c) for c in classes]
        y, l = labels[:, cols], logits[:, cols].astype(np.float64)
        per_example = (-(y * log_softmax(l)).sum(1) if kind == "softmax"
                       else (y * softplus(-l) + (1 - y) * softplus(l)).sum(1))
        specified = y.sum(1) > 0
        expected += per_example[specified].mean()
    groups = conditional.attribute_groups(LABEL_SPEC)
    got = conditional.classification_loss(jnp.asarray(logits), jnp.asarray(labels), groups, kind)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert float(conditional.acgan_d_loss(logits, labels, groups, 0.5, kind)) == pytest.approx(0.5 * expected, rel=1e-5)
    assert float(conditional.acgan_g_loss(logits, labels, groups, 2.0, kind)) == pytest.approx(2.0 * expected, rel=1e-5)


def test_projection_and_acgan_outputs_match_numpy_formulas():
    rng = np.random.default_rng(2)
    labels = tiny_labels(LABEL_SPEC, 4, rng)
    images = rng.standard_normal((4, 8, 4, 3)).astype(np.float32)
    for conditioning in ("projection", "acgan"):
        D = Discriminator(label_size=LABEL_SPEC.dim, conditioning=conditioning, mbstd_group_size=2, **TINY)
        dv = random_variables(lambda: D.init(jax.random.key(3), images, labels, stage=1), rng)
        out, inter = jax.jit(lambda v, x, y: D.apply(v, x, y, stage=1, capture_intermediates=True,
                                                     mutable=["intermediates"]))(dv, images, labels)
        dense0 = np.asarray(inter["intermediates"]["4x2_dense0"]["__call__"][0], np.float64)
        phi = np.where(dense0 >= 0, dense0, 0.2 * dense0)  # the shared trunk's features
        psi = np.asarray(inter["intermediates"]["4x2_dense1"]["__call__"][0])[:, 0]
        if conditioning == "projection":
            V = np.asarray(dv["params"]["4x2_projection"]) / np.sqrt(4)  # equalized-LR scale 1/sqrt(F)
            expected = psi + np.sum((labels @ V) * phi, axis=1)
            np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
            # The projection GAN's losses are the logistic ones on these scores.
            fake = expected[::-1]
            assert float(losses.d_logistic_loss(out, out[::-1])) == pytest.approx(
                softplus(fake).mean() + softplus(-expected).mean(), rel=1e-5)
        else:
            head = dv["params"]["4x2_classifier"]
            expected = phi @ (np.asarray(head["kernel"]) / np.sqrt(4)) + np.asarray(head["bias"])
            np.testing.assert_allclose(out[0], psi, rtol=1e-6)
            np.testing.assert_allclose(out[1], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_r1_with_labels_matches_finite_differences(conditioning):
    """R1's parameter gradient (grad of grad) with labels in D, float64, tiny D, fade-in on."""
    with jax.enable_x64(True):
        D = Discriminator(label_size=LABEL_SPEC.dim, conditioning=conditioning, mbstd_group_size=2,
                          dtype=jnp.float64, **TINY)
        x = jax.random.normal(jax.random.key(0), (2, 8, 4, 3), jnp.float64)
        labels = jnp.asarray(tiny_labels(LABEL_SPEC, 2, np.random.default_rng(3)), jnp.float64)
        params = random_variables(lambda: D.init(jax.random.key(1), x, labels, stage=1), np.random.default_rng(1))
        params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params["params"])

        def scores(p, imgs):
            out = D.apply({"params": p}, imgs, labels, stage=1, alpha=0.7)
            return out[0] if conditioning == "acgan" else out

        def penalty(p):
            return losses.r1_penalty(functools.partial(scores, p), x)

        grads = jax.jit(jax.grad(penalty))(params)
        penalty = jax.jit(penalty)
        assert_matches_finite_differences(penalty, params, grads, num_directions=2)
        if conditioning == "projection":  # the label embedding shapes the input gradient
            assert float(jnp.abs(grads["4x2_projection"]).sum()) > 0


def test_clear_errors_for_bad_labels_and_modes():
    with pytest.raises(ValueError, match="unknown attribute 'hair'"):
        LABEL_SPEC.parse("hair=blonde")
    with pytest.raises(ValueError, match="unknown class 'green' for attribute 'hair_color'"):
        conditional.complete_labels(LABEL_SPEC, "hair_color=green", 2, jax.random.key(0))
    with pytest.raises(ValueError, match="label vectors must have size 15"):
        conditional.check_labels(np.zeros((2, 14)), LABEL_SPEC)
    with pytest.raises(ValueError, match="unknown conditioning 'proj'"):
        conditional.check_conditioning("proj")
    with pytest.raises(ValueError, match="unknown ACGAN loss"):
        conditional.check_conditioning("acgan", "hinge")
    images = jnp.zeros((2, 8, 4, 3))
    with pytest.raises(ValueError, match="labels must have shape"):
        D = Discriminator(label_size=15, conditioning="projection", mbstd_group_size=2, **TINY)
        jax.eval_shape(lambda: D.init(jax.random.key(0), images, jnp.zeros((2, 14)), stage=1))
    with pytest.raises(ValueError, match="needs labels"):
        D = Discriminator(label_size=0, conditioning="acgan", mbstd_group_size=2, **TINY)
        jax.eval_shape(lambda: D.init(jax.random.key(0), images, stage=1))
    with pytest.raises(ValueError, match="unknown conditioning"):
        D = Discriminator(label_size=15, conditioning="aux", mbstd_group_size=2, **TINY)
        jax.eval_shape(lambda: D.init(jax.random.key(0), images, jnp.zeros((2, 15)), stage=1))


def test_complete_labels_keeps_named_classes_and_draws_the_rest():
    vectors = conditional.complete_labels(LABEL_SPEC, "hair_color=blonde,mouth_open=1", 64, jax.random.key(0))
    assert vectors.shape == (64, 15)
    np.testing.assert_array_equal(vectors[:, LABEL_SPEC.column("hair_color", "blonde")], 1)
    np.testing.assert_array_equal(vectors[:, LABEL_SPEC.column("mouth_open", "1")], 1)
    for name, offset, k in conditional.attribute_groups(LABEL_SPEC):
        np.testing.assert_array_equal(vectors[:, offset:offset + k].sum(1), 1)  # every block one class
    eyes = vectors[:, 6:11].argmax(1)
    assert len(set(eyes.tolist())) > 1  # unnamed attributes vary


def test_sample_labels_are_one_hot_per_attribute_and_uniform():
    groups = conditional.attribute_groups(LABEL_SPEC)
    labels = np.asarray(conditional.sample_labels(jax.random.key(0), groups, 6000))
    for name, offset, k in groups:
        block = labels[:, offset:offset + k]
        np.testing.assert_array_equal(block.sum(1), 1)
        frequencies = block.mean(0)
        assert np.all(np.abs(frequencies - 1 / k) < 4 * np.sqrt((1 / k) * (1 - 1 / k) / 6000)), (name, frequencies)


def test_fake_labels_are_the_real_batch_or_uniform_draws():
    groups = conditional.attribute_groups(LABEL_SPEC)
    real = np.tile(LABEL_SPEC.encode({"hair_color": "black", "eye_color": "blue", "mouth_open": 0,
                                      "hairband": 0}), (4000, 1))
    np.testing.assert_array_equal(conditional.fake_labels("data", jax.random.key(0), real, groups), real)
    drawn = np.asarray(conditional.fake_labels("uniform", jax.random.key(0), real, groups))
    assert drawn.shape == real.shape and drawn.dtype == real.dtype
    for name, offset, k in groups:  # every class requested about 1/k of the time, whatever the batch
        block = drawn[:, offset:offset + k]
        np.testing.assert_array_equal(block.sum(1), 1)
        assert np.all(np.abs(block.mean(0) - 1 / k) < 4 * np.sqrt((1 / k) * (1 - 1 / k) / 4000)), name
    with pytest.raises(ValueError, match="unknown loss.fake_labels 'balanced': choose one of data, uniform"):
        conditional.fake_labels("balanced", jax.random.key(0), real, groups)


def test_mismatched_labels_change_one_specified_attribute_to_another_class():
    groups = conditional.attribute_groups(LABEL_SPEC)
    n = 8000
    labels = np.array(conditional.sample_labels(jax.random.key(3), groups, n))  # writable
    labels[:n // 2, 0:6] = 0  # hair colour unspecified in the first half
    labels[-1] = 0            # nothing specified in the last row
    wrong, changed_rows = (np.asarray(x) for x in conditional.mismatched_labels(jax.random.key(4), labels, groups))
    changed = np.stack([np.any(wrong[:, o:o + k] != labels[:, o:o + k], axis=1) for _, o, k in groups], 1)
    np.testing.assert_array_equal(changed.sum(1), np.arange(n) != n - 1)  # one attribute per row
    np.testing.assert_array_equal(changed_rows, np.arange(n) != n - 1)
    np.testing.assert_array_equal(wrong[-1], 0)
    assert not changed[:n // 2, 0].any()  # an unspecified attribute is never the one changed
    for g, (name, o, k) in enumerate(groups):
        for rows, expected_rate in ((slice(0, n // 2), 0.0 if g == 0 else 1 / 3), (slice(n // 2, n - 1), 1 / 4)):
            rate = changed[rows, g].mean()  # the changed attribute: uniform among the specified
            assert abs(rate - expected_rate) < 4 * np.sqrt(expected_rate * (1 - expected_rate) / (n // 2)) + 1e-9, name
        rows = changed[:, g]
        before, after = labels[rows, o:o + k].argmax(1), wrong[rows, o:o + k]
        np.testing.assert_array_equal(after.sum(1), 1)
        assert np.all(after.argmax(1) != before), name
        if k > 2:  # the new class is uniform among the k - 1 others
            counts = np.bincount((after.argmax(1) - before) % k, minlength=k)[1:] / rows.sum()
            assert np.all(np.abs(counts - 1 / (k - 1)) < 4 * np.sqrt((1 / (k - 1)) / rows.sum())), name


def test_mismatch_loss_averages_softplus_over_the_changed_rows():
    scores = np.array([0.3, -1.2, 2.0, 0.0], np.float32)
    changed = np.array([True, False, True, True])
    expected = 0.5 * np.mean(np.log1p(np.exp(scores[changed].astype(np.float64))))
    assert float(conditional.mismatch_loss(scores, changed, 0.5)) == pytest.approx(expected, rel=1e-6)
    assert float(conditional.mismatch_loss(scores, np.zeros(4, bool))) == 0.0


def test_estimated_class_centre_is_the_mean_mapping_output():
    G = Generator.create(latent_size=8, dlatent_size=8, mapping_fmaps=8, mapping_layers=2, label_size=15, **TINY)
    labels = tiny_labels(LABEL_SPEC, 2, np.random.default_rng(5))
    gv = random_variables(lambda: G.init({"params": jax.random.key(0), "noise": jax.random.key(1)},
                                         jnp.ones((2, 8)), labels, stage=0), np.random.default_rng(6))
    got = np.asarray(jax.jit(lambda p, y: conditional.estimate_w_avg_for_labels(G, p, y, jax.random.key(7), 64))(
        gv["params"], labels))
    z = jax.random.normal(jax.random.key(7), (64, 8))
    mapping = jax.jit(lambda v, z, y: G.apply(v, z, y, method=Generator.mapping))
    for i in range(2):
        want = np.asarray(mapping(gv, z, np.repeat(labels[i:i + 1], 64, 0)))[:, 0].mean(0)
        np.testing.assert_allclose(got[i, 0], want, rtol=1e-5, atol=1e-6)
