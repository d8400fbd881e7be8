"""Layer-level checks against independent expectations (formulas, naive implementations)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax import layers


def _rand(shape, seed=0):
    return jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.parametrize("impl", ["depthwise", "shift"])
def test_blur_is_normalized_depthwise_and_preserves_constants(impl):
    x = jnp.full((1, 9, 7, 3), 2.5)
    y = layers.blur(x, impl)
    np.testing.assert_allclose(y[:, 1:-1, 1:-1], 2.5, rtol=1e-6)  # zero padding only touches borders
    # Depthwise: an impulse in channel 1 produces the [1,2,1]x[1,2,1]/16 kernel in channel 1 only.
    impulse = jnp.zeros((1, 5, 5, 3)).at[0, 2, 2, 1].set(1.0)
    out = np.asarray(layers.blur(impulse, impl))
    expected = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    np.testing.assert_allclose(out[0, 1:4, 1:4, 1], expected, atol=1e-7)
    assert np.abs(out[..., [0, 2]]).max() == 0.0
    assert out[..., 1].sum() == pytest.approx(1.0)


@pytest.mark.slow
def test_blur_implementations_agree_with_second_derivatives():
    x = _rand((2, 6, 4, 5))
    weights = _rand((2, 6, 4, 5), 1)
    # A scalar that needs grad-of-grad: the squared norm of the input gradient, as in R1.
    def r1_like(impl, x):
        grad = jax.grad(lambda x: jnp.sum(jnp.tanh(layers.blur(x, impl)) * weights))(x)
        return jnp.sum(grad**2)
    np.testing.assert_allclose(layers.blur(x, "shift"), layers.blur(x, "depthwise"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda x: r1_like("shift", x))(x),
                               jax.grad(lambda x: r1_like("depthwise", x))(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="unknown blur impl"):
        layers.blur(x, "fft")


@pytest.mark.parametrize("shape", [(2, 6, 4, 5), (1, 3, 7, 2)])  # even sides; odd ones
def test_winograd_conv_equals_lax_conv_with_second_derivatives(shape):
    """Winograd's F(2x2, 3x3) against XLA's convolution: values, both gradients and R1's grad of
    grad, on even and odd sides (an odd side is padded to whole tiles and cropped)."""
    x = _rand(shape)
    w = _rand((3, 3, shape[-1], 4), 1) / 3  # keeps tanh off its flat tails
    weights = _rand((*shape[:3], 4), 2)
    def loss(impl, x, w):
        return jnp.sum(jnp.tanh(layers.conv2d(x, w, impl)) * weights)
    def r1_like(impl, x, w):  # grad of grad, as in R1: the squared norm of the input gradient
        return jnp.sum(jax.grad(loss, argnums=1)(impl, x, w) ** 2)
    for fn, tol in ((lambda impl, x, w: layers.conv2d(x, w, impl), 1e-5),
                    (jax.grad(loss, argnums=(1, 2)), 1e-5), (jax.grad(r1_like, argnums=(1, 2)), 1e-3)):
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=tol, atol=tol),
            fn("winograd", x, w), fn("lax", x, w))
    with pytest.raises(ValueError, match="unknown conv impl"):
        layers.conv2d(x, w, "fft")


def test_winograd_conv_matches_a_direct_float64_sum_and_takes_3x3_kernels_only():
    """Against the convolution written out as a sum over the 9 taps in float64 numpy (an
    expectation independent of XLA), at the size and width the CPU default uses it for; a 1x1
    or 5x5 kernel is refused by name, and the default leaves them to lax."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 16, 128)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 128, 8)) / 34).astype(np.float32)
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = sum(padded[:, i:i + 16, j:j + 16] @ w[i, j].astype(np.float64)
               for i in range(3) for j in range(3))
    np.testing.assert_allclose(layers.conv2d(jnp.asarray(x), jnp.asarray(w), "winograd"), want,
                               rtol=1e-4, atol=2e-5)
    for k in (1, 5):
        small = jnp.asarray(rng.standard_normal((k, k, 128, 8)), jnp.float32)
        with pytest.raises(ValueError, match="3x3 kernels only"):
            layers.conv2d(jnp.asarray(x), small, "winograd")
        with layers.conv_impl_scope("winograd"):
            np.testing.assert_allclose(layers.conv2d(jnp.asarray(x), small),
                                       layers.conv2d(jnp.asarray(x), small, "lax"))


def test_up_and_downscale_match_naive_loops():
    x = np.asarray(_rand((2, 3, 5, 2)))
    up = np.asarray(layers.upscale(jnp.asarray(x)))
    for i in range(6):
        for j in range(10):
            np.testing.assert_array_equal(up[:, i, j], x[:, i // 2, j // 2])
    down = np.asarray(layers.downscale(jnp.asarray(up)))
    np.testing.assert_allclose(down, x, rtol=1e-6)


@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equalized_dense_raw_weights_and_runtime_scale(lr_mul):
    layer = layers.EqualizedDense(256, lr_mul=lr_mul)
    params = layer.init(jax.random.key(0), jnp.zeros((1, 400)))["params"]
    raw = np.asarray(params["kernel"]) * lr_mul  # stored ~ N(0, 1/lr_mul)
    assert raw.std() == pytest.approx(1.0, rel=0.02) and abs(raw.mean()) < 0.01
    x = np.asarray(_rand((3, 400), 1))
    params = {"kernel": params["kernel"], "bias": jnp.full((256,), 0.5)}
    y = layer.apply({"params": params}, jnp.asarray(x))
    he = math.sqrt(2.0) / math.sqrt(400)  # He's constant for fan_in 400, gain sqrt(2)
    expected = x @ (np.asarray(params["kernel"]) * he * lr_mul) + 0.5 * lr_mul
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_equalized_conv_runtime_scale():
    layer = layers.EqualizedConv(4, 3, gain=1.0, use_bias=False)
    x = _rand((1, 6, 6, 5))
    params = layer.init(jax.random.key(0), x)
    raw = params["params"]["kernel"]
    y = layer.apply(params, x)
    ref = jax.lax.conv_general_dilated(x, raw / math.sqrt(3 * 3 * 5), (1, 1), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("resample", ["up", "down"])
def test_fused_resampling_equals_separate_ops(resample):
    x = _rand((2, 8, 4, 3))
    unfused = layers.EqualizedConv(5, 3, resample=resample, fused=False)
    fused = layers.EqualizedConv(5, 3, resample=resample, fused=True)
    params = unfused.init(jax.random.key(3), x)
    params = jax.tree_util.tree_map(lambda p: p + 0.1, params)  # non-zero bias too
    np.testing.assert_allclose(fused.apply(params, x), unfused.apply(params, x), rtol=1e-4, atol=1e-5)


def test_pixel_and_instance_norm():
    x = _rand((2, 4, 3, 6)) * 3 + 1
    p = layers.pixel_norm(x)
    np.testing.assert_allclose(jnp.mean(p**2, axis=-1), 1.0, rtol=1e-4)
    i = layers.instance_norm(x)
    np.testing.assert_allclose(jnp.mean(i, axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.mean(i**2, axis=(1, 2)), 1.0, rtol=1e-4)


def test_style_modulation_is_adain():
    x = _rand((2, 4, 4, 3))
    w = _rand((2, 8), 1)
    mod = layers.StyleModulation()
    params = mod.init(jax.random.key(0), x, w)
    kernel = params["params"]["dense"]["kernel"] / math.sqrt(8)
    style = w @ kernel
    expected = x * (1 + style[:, None, None, :3]) + style[:, None, None, 3:]
    np.testing.assert_allclose(mod.apply(params, x, w), expected, rtol=1e-5, atol=1e-5)


def test_minibatch_stddev_matches_numpy():
    x = np.asarray(_rand((8, 3, 2, 4)))
    y = np.asarray(layers.minibatch_stddev(jnp.asarray(x), group_size=4))
    assert y.shape == (8, 3, 2, 5)
    np.testing.assert_array_equal(y[..., :4], x)
    for g in range(2):
        group = x[4 * g: 4 * g + 4]
        expected = np.sqrt(group.var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(y[4 * g: 4 * g + 4, ..., 4], expected, rtol=1e-5)


def test_noise_injection_is_per_channel():
    x = jnp.zeros((1, 2, 2, 3))
    noise = jnp.ones((1, 2, 2, 1))
    out = layers.NoiseInjection().apply({"params": {"weight": jnp.array([1.0, 0.0, -2.0])}}, x, noise)
    np.testing.assert_array_equal(out[0, 0, 0], [1.0, 0.0, -2.0])


def test_conv_impl_scope_sets_the_default_and_the_environment_wins(monkeypatch):
    monkeypatch.delenv(layers.CONV_IMPL_ENV, raising=False)
    backend_default = "winograd" if jax.default_backend() == "cpu" else "lax"
    assert layers.default_conv_impl() == backend_default
    with layers.conv_impl_scope("lax"):
        assert layers.default_conv_impl() == "lax"
        with layers.conv_impl_scope("winograd"):
            assert layers.default_conv_impl() == "winograd"
        assert layers.default_conv_impl() == "lax"
        monkeypatch.setenv(layers.CONV_IMPL_ENV, "winograd")
        assert layers.default_conv_impl() == "winograd"
    monkeypatch.delenv(layers.CONV_IMPL_ENV)
    assert layers.default_conv_impl() == backend_default
    # On the CPU, small convolutions keep lax.conv (Winograd's transforms outweigh its gain there).
    small, large = layers.WINOGRAD_MIN_CHANNELS // 2, layers.WINOGRAD_MIN_CHANNELS
    assert layers.default_conv_impl(small) == "lax"
    assert layers.default_conv_impl(large) == backend_default
    # ... and so do those on small images (XLA:CPU's convolutions are as fast there).
    few, many = layers.WINOGRAD_MIN_PIXELS // 4, layers.WINOGRAD_MIN_PIXELS
    assert layers.default_conv_impl(large, few) == "lax"
    assert layers.default_conv_impl(large, many) == backend_default
    assert layers.default_conv_impl(small, many) == "lax"
    with layers.conv_impl_scope("winograd"):
        assert layers.default_conv_impl(small) == "winograd"
        assert layers.default_conv_impl(large, few) == "winograd"
    with pytest.raises(ValueError, match="choose one of lax, winograd"):
        with layers.conv_impl_scope("cudnn"):
            pass
