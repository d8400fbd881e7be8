"""StyleGAN building blocks as pure Flax linen modules and functions (NHWC layout).

Follows NVlabs/stylegan `training/networks_stylegan.py` (Karras et al., arXiv 1812.04948) and
PGGAN (arXiv 1710.10196):

* Equalized learning rate (PGGAN section 4.1): weights are drawn from N(0, 1/lr_mul) and scaled at
  run time by He's constant `gain / sqrt(fan_in)` times `lr_mul`, so every layer learns at the same
  speed under Adam.
* Blurred resampling (StyleGAN appendix C): a separable [1, 2, 1] low-pass filter applied as a
  *depthwise* convolution. Its second derivative (needed for R1) is plain `jax.grad` of `jax.grad`.
* Once the smaller side is >= 128 px (128x128 in the official, square code), the upsample is fused
  with the following conv (a transposed conv) and the downsample with the preceding conv (a strided
  conv); both are exact rewrites of "nearest upscale then 3x3 conv" and "3x3 conv then 2x2 box
  downscale" (tests check this).
"""
import contextlib
import math
import os
import threading
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

SQRT2 = math.sqrt(2.0)
_DIMS = ("NHWC", "HWIO", "NHWC")


def at_least_f32(x):
    """x in float32, or in float64 when it already is (bfloat16 compute keeps norms in float32)."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def leaky_relu(x, slope: float = 0.2):
    """LeakyReLU(0.2). The sqrt(2) gain is folded into the next layer's He constant, as officially."""
    return jnp.where(x >= 0, x, x * slope)


def pixel_norm(x, epsilon: float = 1e-8):
    """Normalizes each feature vector to unit RMS over the last axis (PGGAN section 4.2)."""
    x32 = at_least_f32(x)
    return (x32 * jax.lax.rsqrt(jnp.mean(x32**2, axis=-1, keepdims=True) + epsilon)).astype(x.dtype)


def instance_norm_stats(x, epsilon: float = 1e-8):
    """(mean, 1 / RMS about the mean) per example and channel over H, W, float32 [N, 1, 1, C]."""
    x32 = at_least_f32(x)
    mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
    return mean, jax.lax.rsqrt(jnp.mean((x32 - mean)**2, axis=(1, 2), keepdims=True) + epsilon)


def instance_norm(x, epsilon: float = 1e-8, stats=None):
    """Zero mean, unit RMS per example and channel over H, W (the 'IN' of AdaIN), in float32.

    stats: (mean, inverse RMS) to use instead of x's own (instance_norm_stats of another
    activation: the explorer's edits keep the unedited image's statistics).
    """
    x32 = at_least_f32(x)
    mean, inverse_rms = instance_norm_stats(x32, epsilon) if stats is None else stats
    return ((x32 - mean) * inverse_rms).astype(x.dtype)


class InstanceNorm(nn.Module):
    """`instance_norm` as a module without parameters, so that every use is a named call: tools
    that read or replace a network's normalization statistics intercept it
    (flax.linen.intercept_methods) instead of the network taking options for them."""
    epsilon: float = 1e-8      # added to the variance

    def __call__(self, x):
        return instance_norm(x, self.epsilon)


def blur(x, impl: Optional[str] = None):
    """Separable [1, 2, 1] x [1, 2, 1] / 16 low-pass filter, zero padded ('SAME'), per channel.

    impl="depthwise": a depthwise convolution (channel c of the output only sees channel c of the
    input), as in the official code. impl="shift": the same filter as padded, shifted adds; XLA:CPU
    runs grouped convolutions slowly (~35x here), so the CPU backend uses this form by default
    (None). Both are plain JAX, so R1's grad-of-grad goes straight through either; tests check
    that they agree, derivatives included.
    """
    if impl is None:
        impl = "shift" if jax.default_backend() == "cpu" else "depthwise"
    if impl == "shift":
        p = jnp.pad(x, ((0, 0), (1, 1), (0, 0), (0, 0)))
        x = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) * 0.25
        p = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
        return (p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]) * 0.25
    if impl != "depthwise":
        raise ValueError(f"unknown blur impl {impl!r}: choose 'depthwise' or 'shift'")
    channels = x.shape[-1]
    taps = jnp.array([1.0, 2.0, 1.0], x.dtype)
    kernel = jnp.outer(taps, taps) / 16.0
    kernel = jnp.tile(kernel[:, :, None, None], (1, 1, 1, channels))  # HWIO with I=1 per group
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=_DIMS, feature_group_count=channels)


CONV_IMPL_ENV = "STYLEGAN_JAX_CONV_IMPL"  # "lax" or "winograd": forces conv2d's default
CONV_IMPLS = ("lax", "winograd")


_SCOPE = threading.local()  # .impl: the conv implementation a conv_impl_scope sets


def _checked_impl(impl: str, what: str) -> str:
    if impl not in CONV_IMPLS:
        raise ValueError(f"{what}{impl!r}: choose one of {', '.join(CONV_IMPLS)}")
    return impl


@contextlib.contextmanager
def conv_impl_scope(impl: str):
    """Within the block (in this thread), conv2d defaults to `impl`: e.g. an exported graph should
    hold plain convolutions (one Conv node each) whatever the backend that traces it."""
    previous = getattr(_SCOPE, "impl", None)
    _SCOPE.impl = _checked_impl(impl, "unknown conv impl ")
    try:
        yield
    finally:
        _SCOPE.impl = previous


# CPU: Winograd for 3x3 convolutions with at least this many input channels and pixels per image.
WINOGRAD_MIN_CHANNELS = 128
WINOGRAD_MIN_PIXELS = 16 * 16


def default_conv_impl(in_channels: Optional[int] = None, pixels: Optional[int] = None) -> str:
    """conv2d's implementation of a 3x3 convolution when none is given: $STYLEGAN_JAX_CONV_IMPL if
    set, else the innermost conv_impl_scope's, else on the CPU backend "winograd" for
    convolutions with at least WINOGRAD_MIN_CHANNELS input channels and WINOGRAD_MIN_PIXELS
    pixels per image (None: any) and "lax" for the others, and "lax" on other backends.

    Why (one 3x3 convolution, batch 16, forward + backward, on a 2-core x86 CPU; an R1-like grad
    of grad is alike): 512 channels at 32x32, XLA:CPU's own convolution 1.85 s, Winograd 1.18 s;
    at 16x16 0.35 s and 0.27 s; at 8x8 the same (0.09-0.10 s); 256 channels at 64x64 4.3 s and
    2.1 s. On few channels (the demo's 8-32) lax.conv is faster: the transforms' memory traffic
    outweighs the saved multiplies. Read when a function is traced, so set it before."""
    impl = os.environ.get(CONV_IMPL_ENV, "")
    if impl:
        return _checked_impl(impl, f"${CONV_IMPL_ENV}=")
    scoped = getattr(_SCOPE, "impl", None)
    if scoped:
        return scoped
    if jax.default_backend() != "cpu":
        return "lax"
    wide = in_channels is None or in_channels >= WINOGRAD_MIN_CHANNELS
    large = pixels is None or pixels >= WINOGRAD_MIN_PIXELS
    return "winograd" if wide and large else "lax"


# Winograd's F(2x2, 3x3) (Lavin & Gray, arXiv 1509.09308): Y = A^T [(G g G^T) * (B^T d B)] A for
# a 4x4 input tile d, a 3x3 kernel g and the 2x2 output tile Y.
_WINOGRAD_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


def _winograd_input(a0, a1, a2, a3):
    """B^T along one axis, given the tile's 4 input rows (or columns): B^T's rows are
    [1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]."""
    return a0 - a2, a1 + a2, a2 - a1, a1 - a3


def _winograd_output(m0, m1, m2, m3):
    """A^T along one axis: its rows are [1, 1, 1, 0] and [0, 1, -1, -1]."""
    return m0 + m1 + m2, m1 - m2 - m3


def _winograd_conv(x, w):
    """Stride-1 'SAME' 3x3 convolution by Winograd's F(2x2, 3x3): the 16 transformed inputs of
    every 2x2 output tile times the 16 transformed kernels ([16, tiles, C] x [16, C, O], one
    batched matrix product: 16 multiplies per output pair of channels and tile, against 36 for
    the direct convolution), then the output transform. Odd sides get a zero row / column more,
    cropped from the output."""
    n, h, width, c = x.shape
    out = w.shape[-1]
    th, tw = -(-h // 2), -(-width // 2)  # tiles per column and row
    p = jnp.pad(x, ((0, 0), (1, 1 + 2 * th - h), (1, 1 + 2 * tw - width), (0, 0)))
    # The input transform, separably: rows of every tile (stride 2), then its columns.
    rows = _winograd_input(*(p[:, k:k + 2 * th:2] for k in range(4)))
    v = jnp.stack([col for r in rows
                   for col in _winograd_input(*(r[:, :, k:k + 2 * tw:2] for k in range(4)))])
    g = jnp.asarray(_WINOGRAD_G, w.dtype)
    u = jnp.einsum("ai,ijco,bj->abco", g, w, g).reshape(16, c, out)
    m = jnp.einsum("ktc,kco->kto", v.reshape(16, n * th * tw, c), u)
    m = m.reshape(4, 4, n, th, tw, out)
    y = [_winograd_output(*r) for r in zip(*(_winograd_output(*m[:, b]) for b in range(4)))]
    # y[i][j]: output pixel (2 * tile_row + i, 2 * tile_col + j) of every tile.
    y = jnp.stack([jnp.stack(row, axis=3) for row in y], axis=2)  # [n, th, 2, tw, 2, out]
    return y.reshape(n, 2 * th, 2 * tw, out)[:, :h, :width]


def conv2d(x, w, impl: Optional[str] = None):
    """Stride-1 'SAME' convolution of x [N, H, W, C] with an odd k x k kernel w [k, k, C, O].

    impl="lax": one lax.conv_general_dilated. impl="winograd" (3x3 kernels only): Winograd's
    F(2x2, 3x3) (_winograd_conv): linear transforms (adds and subtracts of strided slices) around
    one batched matrix product, so its derivatives (autodiff, grad of grad included) are matrix
    products and transforms too, with 16/36 of the direct convolution's multiplies. XLA:CPU's
    own backward convolutions are slow, so the CPU backend uses it for wide 3x3 convolutions of
    images from 16x16 (None: default_conv_impl(); other kernels: lax). Both are plain JAX;
    tests check that they agree, derivatives included.
    """
    k = w.shape[0]
    assert k == w.shape[1] and k % 2 == 1, f"conv2d needs an odd square kernel, got {w.shape}"
    if impl is None:
        impl = default_conv_impl(x.shape[-1], x.shape[1] * x.shape[2]) if k == 3 else "lax"
    impl = _checked_impl(impl, "unknown conv impl ")
    if impl == "lax":
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_DIMS)
    if k != 3:
        raise ValueError(f"the winograd conv impl takes 3x3 kernels only, got {k}x{k}: use lax")
    return _winograd_conv(x, w)


def upscale(x, factor: int = 2):
    """Nearest-neighbour upsampling by an integer factor on H and W."""
    if factor == 1:
        return x
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def downscale(x, factor: int = 2):
    """Box (area-average) downsampling by an integer factor on H and W."""
    if factor == 1:
        return x
    n, h, w, c = x.shape
    assert h % factor == 0 and w % factor == 0, (x.shape, factor)
    return x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def lerp(a, b, t):
    """a + (b - a) * t."""
    return a + (b - a) * t


def _fused_kernel(w):
    """Turns a 3x3 kernel into the 4x4 kernel of its fused 2x resampling form (official trick)."""
    w = jnp.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def equalized_scale(fan_in: int, gain: float = SQRT2, lr_mul: float = 1.0) -> float:
    """What an equalized-LR weight is multiplied by when used: He's std gain / sqrt(fan_in),
    times the learning-rate multiplier."""
    return gain / math.sqrt(fan_in) * lr_mul


def _weight(module: nn.Module, name: str, shape, gain: float, lr_mul: float, dtype):
    """Equalized-LR weight: stored ~ N(0, 1/lr_mul), used as stored * equalized_scale."""
    fan_in = math.prod(shape[:-1])
    raw = module.param(name, nn.initializers.normal(stddev=1.0 / lr_mul), shape, jnp.float32)
    return (raw * equalized_scale(fan_in, gain, lr_mul)).astype(dtype)


def _bias(module: nn.Module, features: int, lr_mul: float, dtype):
    return (module.param("bias", nn.initializers.zeros, (features,), jnp.float32) * lr_mul).astype(dtype)


class EqualizedDense(nn.Module):
    """Fully connected layer with equalized learning rate; flattens all but the batch axis."""
    features: int              # output units
    gain: float = SQRT2        # He gain; sqrt(2) before a leaky ReLU, 1 for linear outputs
    lr_mul: float = 1.0        # learning-rate multiplier (0.01 in the mapping network)
    use_bias: bool = True      # add a learned bias (also scaled by lr_mul)
    dtype: Any = jnp.float32   # compute dtype

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], -1).astype(self.dtype)
        w = _weight(self, "kernel", (x.shape[-1], self.features), self.gain, self.lr_mul, self.dtype)
        y = x @ w
        if self.use_bias:
            y = y + _bias(self, self.features, self.lr_mul, self.dtype)
        return y


class EqualizedConv(nn.Module):
    """Conv layer with equalized learning rate, optionally fused with 2x up- or downsampling.

    resample="up":   nearest 2x upscale then conv (fused: one transposed conv).
    resample="down": conv then 2x2 box downscale (fused: one strided conv).
    """
    features: int              # output channels
    kernel: int = 3            # square kernel size
    gain: float = SQRT2        # He gain
    lr_mul: float = 1.0        # learning-rate multiplier
    use_bias: bool = True      # add a learned bias
    resample: Optional[str] = None  # None, "up" or "down"
    fused: bool = False        # fuse the resampling into the conv (official: smaller side >= 128)
    dtype: Any = jnp.float32   # compute dtype
    impl: Optional[str] = None  # conv2d's implementation of the unfused conv (None: by backend)

    @nn.compact
    def __call__(self, x):
        x = x.astype(self.dtype)
        shape = (self.kernel, self.kernel, x.shape[-1], self.features)
        w = _weight(self, "kernel", shape, self.gain, self.lr_mul, self.dtype)
        if self.resample == "up" and self.fused:
            y = jax.lax.conv_general_dilated(x, _fused_kernel(w), (1, 1), ((2, 2), (2, 2)),
                                             lhs_dilation=(2, 2), dimension_numbers=_DIMS)
        elif self.resample == "down" and self.fused:
            y = jax.lax.conv_general_dilated(x, _fused_kernel(w) * 0.25, (2, 2), ((1, 1), (1, 1)),
                                             dimension_numbers=_DIMS)
        else:
            if self.resample == "up":
                x = upscale(x)
            y = conv2d(x, w, self.impl)
            if self.resample == "down":
                y = downscale(y)
        if self.use_bias:
            y = y + _bias(self, self.features, self.lr_mul, self.dtype)
        return y


class NoiseInjection(nn.Module):
    """Adds single-channel noise [N, H, W, 1] scaled by a learned per-channel weight (init 0)."""

    @nn.compact
    def __call__(self, x, noise):
        weight = self.param("weight", nn.initializers.zeros, (x.shape[-1],), jnp.float32)
        return x + noise.astype(x.dtype) * weight.astype(x.dtype)


class StyleModulation(nn.Module):
    """AdaIN's affine part: a dense layer maps w to a per-channel (scale, bias); x * (1 + s) + b.

    Its kernel is [dlatent, 2 * channels]: the scale's outputs, then the bias's."""
    dtype: Any = jnp.float32   # compute dtype
    GAIN = 1.0                 # He gain of the dense layer (linear: no activation follows)

    @nn.compact
    def __call__(self, x, w):
        channels = x.shape[-1]
        style = EqualizedDense(channels * 2, gain=self.GAIN, dtype=self.dtype, name="dense")(w)
        scale, bias = style[:, None, None, :channels], style[:, None, None, channels:]
        return x * (scale + 1.0) + bias


def minibatch_stddev(x, group_size: int = 4, num_features: int = 1):
    """Appends the average over features of the stddev across a group (PGGAN section 3).

    Groups are *contiguous* examples (official: strided), so with a batch sharded over devices and
    a per-device batch divisible by the group size, every group lives on one device and no
    cross-device traffic is needed.
    """
    n, h, w, c = x.shape
    group = min(group_size, n)
    assert n % group == 0, f"batch {n} must be a multiple of the minibatch-stddev group {group}"
    assert c % num_features == 0, (c, num_features)
    y = at_least_f32(x).reshape(n // group, group, h, w, num_features, c // num_features)
    y = y - jnp.mean(y, axis=1, keepdims=True)
    y = jnp.sqrt(jnp.mean(y**2, axis=1) + 1e-8)             # [M, H, W, F, c/F]
    y = jnp.mean(y, axis=(1, 2, 4))                          # [M, F]
    y = jnp.repeat(y, group, axis=0)[:, None, None, :]       # [N, 1, 1, F]
    y = jnp.broadcast_to(y, (n, h, w, num_features)).astype(x.dtype)
    return jnp.concatenate([x, y], axis=-1)
