"""Discriminator augmentations: ADA's pipeline (Karras et al. 2020, arXiv 2006.06676), DiffAugment
(Zhao et al. 2020, arXiv 2006.10738) and the controller of ADA's probability p.

Pure JAX functions of images [N, H, W, C] in [-1, 1] (C = 3, or 1 for grey), rectangular sizes
included. Every operation is a gather, a pad or a linear map of the pixels, so the output is
differentiable with respect to the images to any order: R1 through the augmentations is plain
`jax.grad` of `jax.grad` (the official PyTorch code needs custom "gradfix" ops for this).

ADA's "bgc" pipeline, as NVlabs/stylegan2-ada-pytorch `training/augment.py` defines it: every
transform is drawn per image and applied with probability p (the rotations with 1 - sqrt(1 - p)
each, so that "pre or post rotation" has probability p), with the official strengths (BGC):

* b, pixel blitting: x-flip, rotation by a multiple of 90 degrees, integer translation (up to
  1/8 of the image, reflection padding). Executed exactly, as a gather of pixels. A 90 or 270
  degree turn would swap H and W, which a fixed non-square shape cannot hold: non-square images
  are turned by 0 or 180 degrees only (each with probability 1/2 when the transform applies);
  square ones by 0, 90, 180 or 270.
* g, general geometry: isotropic scaling (log2 std 0.2), rotation before and after anisotropic
  scaling (log2 std 0.2) by up to a full turn, fractional translation (std 1/8 of the image).
  Executed as the official code does: reflection padding, 2x upsampling with the sym6 wavelet
  low-pass, bilinear sampling of the affine grid, filtered 2x downsampling. The padding is fixed
  (shapes are static): H-1 and W-1 pixels a side, the official padding at its largest, plus the
  filters' reach of 6 pixels (official Hz_pad * 2), so that 8x4 images are resampled as exactly
  as large ones; images with no geometric transform drawn are passed through unchanged.
* c, colour: brightness (std 0.2), contrast (log2 std 0.5), luma flip, hue rotation (up to a
  full turn) and saturation (log2 std 1) as one 4x4 affine map of RGB per image, about mid grey
  (0) and the luma axis (1, 1, 1) / sqrt(3).

The blits are applied before the geometric transforms; together they equal the official single
resampling of both, up to what the padding shows near the borders.

DiffAugment ("color,translation,cutout"): brightness + U(-0.5, 0.5), saturation x U(0, 2),
contrast x U(0.5, 1.5), translation by up to 1/8 of each side (zero padding), cutout of a
rectangle half the image's sides; every transform on every image, no probability.

The controller (`adjust_p`): every `interval` steps, p moves by
sign(r_t - target) * (reals seen in those steps) / (speed_kimg * 1000), clamped to [0, 1], where
r_t = E[sign(D(real))] over those steps (the official heuristic; its p has no upper clamp).
"""
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.utils import ConfigError

KINDS = ("none", "ada", "fixed", "diffaug")  # config.augment.kind
PIPELINE_GROUPS = "bgc"                      # letters of config.augment.pipeline

# The official BGC strengths (AugmentPipe defaults).
XINT_MAX = 0.125        # integer translation, up to this fraction of the image's sides
SCALE_STD = 0.2         # log2 std of isotropic scaling
ROTATE_MAX = 1.0        # rotation, up to this fraction of a full turn either way
ANISO_STD = 0.2         # log2 std of anisotropic scaling
XFRAC_STD = 0.125       # std of fractional translation, as a fraction of the image's sides
BRIGHTNESS_STD = 0.2    # std of the brightness offset
CONTRAST_STD = 0.5      # log2 std of contrast
HUE_MAX = 1.0           # hue rotation, up to this fraction of a full turn either way
SATURATION_STD = 1.0    # log2 std of saturation

# Low-pass of the sym6 wavelet: the official filter of the geometric resampling. Orthogonal, so
# upsampling with it and downsampling with its mirror image is the identity.
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)

_HIGHEST = jax.lax.Precision.HIGHEST


def _mm(a, b):
    """Batched matrix product in full float32 precision (TPU/GPU default to fewer bits)."""
    return jnp.matmul(a, b, precision=_HIGHEST)


# Homogeneous matrices, one per image: [N, 3, 3] in 2D (x right, y down, pixels, centred) and
# [N, 4, 4] for RGB.

def _stack_matrix(rows, batch):
    """[N, R, C] from nested lists of scalars or [N] arrays."""
    return jnp.stack([jnp.stack([jnp.broadcast_to(jnp.asarray(v, jnp.float32), (batch,))
                                 for v in row], -1) for row in rows], -2)


def translate2d(tx, ty):
    batch = jnp.shape(tx)[0]
    return _stack_matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], batch)


def scale2d(sx, sy):
    batch = jnp.shape(sx)[0]
    return _stack_matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], batch)


def rotate2d(theta):
    batch = jnp.shape(theta)[0]
    c, s = jnp.cos(theta), jnp.sin(theta)
    return _stack_matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], batch)


LUMA_AXIS = np.asarray([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3.0)   # homogeneous RGB: grey
LUMA_PROJECTION = np.outer(LUMA_AXIS, LUMA_AXIS).astype(np.float32)


def translate3d(t):
    """Adds t [N] to every channel."""
    batch = t.shape[0]
    return _stack_matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], batch)


def scale3d(s):
    """Multiplies every channel by s [N] (about mid grey, 0)."""
    batch = s.shape[0]
    return _stack_matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], batch)


def rotate_about_luma(theta):
    """Rotation of RGB by theta [N] about the luma axis (Rodrigues' formula): a hue rotation."""
    vx, vy, vz = (float(v) for v in LUMA_AXIS[:3])
    s, c = jnp.sin(theta), jnp.cos(theta)
    cc = 1 - c
    return _stack_matrix([
        [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
        [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
        [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
        [0, 0, 0, 1]], theta.shape[0])


# Executing the transforms.

def _reflect(index, size: int):
    """Index into [0, size) of `index` under reflection padding that does not repeat the edge."""
    if size == 1:
        return jnp.zeros_like(index)
    period = 2 * (size - 1)
    index = jnp.mod(index, period)
    return jnp.where(index >= size, period - index, index)


def _gather_pixels(images, rows, cols):
    """images[n, rows[n, i, j], cols[n, i, j]] for index arrays [N, H', W']."""
    n, h, w, c = images.shape
    flat = (rows * w + cols).reshape(n, -1, 1)
    out = jnp.take_along_axis(images.reshape(n, h * w, c), flat, axis=1)
    return out.reshape(n, *rows.shape[1:], c)


def blit(images, flip, quarter_turns, shift):
    """Exact pixel blits, per image: x-flip (flip [N] in {0, 1}), then a rotation by
    quarter_turns [N] x 90 degrees (counterclockwise as displayed: np.rot90 on (H, W)), then an
    integer translation by shift [N, 2] = (dx, dy) pixels, with reflection padding.

    Odd quarter turns need square images."""
    n, h, w, _ = images.shape
    # Centred coordinates, doubled so that they are integers for even and odd sizes alike.
    x2 = (2 * jnp.arange(w) - (w - 1))[None, None, :]
    y2 = (2 * jnp.arange(h) - (h - 1))[None, :, None]
    x2 = x2 - 2 * shift[:, 0, None, None]        # inverse translation
    y2 = y2 - 2 * shift[:, 1, None, None]
    k = jnp.mod(quarter_turns, 4)[:, None, None]
    cos = jnp.take(jnp.asarray([1, 0, -1, 0]), k)
    sin = jnp.take(jnp.asarray([0, 1, 0, -1]), k)
    x2, y2 = cos * x2 - sin * y2, sin * x2 + cos * y2   # inverse rotation
    x2 = jnp.where(flip[:, None, None] > 0, -x2, x2)    # inverse flip
    cols = _reflect((x2 + (w - 1)) // 2, w)
    rows = _reflect((y2 + (h - 1)) // 2, h)
    return _gather_pixels(images, rows, cols)


def _fir(x, taps, axis: int):
    """Correlation of x with `taps` along `axis`, 'valid' (length shrinks by len(taps) - 1)."""
    length = x.shape[axis] - len(taps) + 1
    out = 0.0
    for t, tap in enumerate(taps):
        out = out + tap * jax.lax.slice_in_dim(x, t, t + length, axis=axis)
    return out


def _pad_axis(x, before: int, after: int, axis: int):
    """Zero padding along one axis; negative amounts crop."""
    if before < 0:
        x = jax.lax.slice_in_dim(x, -before, x.shape[axis], axis=axis)
        before = 0
    if after < 0:
        x = jax.lax.slice_in_dim(x, 0, x.shape[axis] + after, axis=axis)
        after = 0
    pads = [(0, 0)] * x.ndim
    pads[axis] = (before, after)
    return jnp.pad(x, pads)


def upsample2x(x, axis: int, taps=SYM6):
    """2x upsampling along `axis`: zeros inserted after each sample, then the gain-2 low-pass
    (official upfirdn2d.upsample2d with its padding, per axis), computed polyphase: the even and
    the odd outputs are each a FIR of the input with every second tap, no zeros multiplied."""
    f = [2.0 * v / sum(taps) for v in taps[::-1]]   # a convolution: the taps reversed
    assert len(f) == 12, "the phases below are worked out for sym6's 12 taps"
    length = x.shape[axis]
    padded = _pad_axis(x, 3, 3, axis)
    even = _fir(jax.lax.slice_in_dim(padded, 0, length + 5, axis=axis), f[0::2], axis)
    odd = _fir(jax.lax.slice_in_dim(padded, 1, length + 6, axis=axis), f[1::2], axis)
    shape = list(x.shape)
    shape[axis] *= 2
    return jnp.stack([even, odd], axis=axis + 1).reshape(shape)


def downsample2x(x, axis: int, crop: int, taps=SYM6):
    """Low-pass (taps as given: the mirror image of `upsample2x`'s convolution), every second
    sample kept, `crop` samples of the half-rate result's border dropped on each side before."""
    f = [v / sum(taps) for v in taps]
    n = len(taps)
    pad0, pad1 = (n - 1) // 2 - 2 * crop, (n - 2) // 2 - 2 * crop
    y = _fir(_pad_axis(x, pad0, pad1, axis), f, axis)
    return jax.lax.slice_in_dim(y, 0, y.shape[axis], stride=2, axis=axis)


def bilinear_sample(images, x, y):
    """images at fractional pixel indices x, y [N, H', W'] (pixel centres at integers), each of
    the four neighbours counting zero outside the image (grid_sample, zeros padding)."""
    _, h, w, _ = images.shape
    x0, y0 = jnp.floor(x), jnp.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    out = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            col, row = (x0 + dx).astype(jnp.int32), (y0 + dy).astype(jnp.int32)
            inside = ((col >= 0) & (col < w) & (row >= 0) & (row < h))[..., None]
            pixels = _gather_pixels(images, jnp.clip(row, 0, h - 1), jnp.clip(col, 0, w - 1))
            out = out + jnp.where(inside, pixels, 0.0) * (wx * wy)
    return out


def resample(images, g_inv):
    """The geometric transform with inverse g_inv [N, 3, 3] (output pixel -> input pixel, centred
    pixel coordinates) executed as the official pipeline does: reflection padding, 2x sym6
    upsampling, bilinear sampling, 2x sym6 downsampling."""
    _, h, w, _ = images.shape
    margin = len(SYM6) // 4   # output border kept for the downsampling filter (official Hz_pad)
    # The official padding at its largest, plus the filters' reach, so that small images (the
    # first stages of progressive growing) are resampled as exactly as large ones.
    pad_y, pad_x = h - 1 + 2 * margin, w - 1 + 2 * margin
    padded = jnp.pad(images, ((0, 0), (pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="reflect")
    up = upsample2x(upsample2x(padded, 1), 2)
    # Sampling grid: the output and its margin at twice the resolution. A sample at upsampled
    # centred coordinate u is the image at centred coordinate (u + 0.5) / 2.
    out_h, out_w = 2 * (h + 2 * margin), 2 * (w + 2 * margin)
    ux = jnp.arange(out_w) - (out_w - 1) / 2
    uy = jnp.arange(out_h) - (out_h - 1) / 2
    cx, cy = jnp.meshgrid((ux + 0.5) / 2, (uy + 0.5) / 2)          # [H', W']
    m = g_inv[:, :, None, None, :]                                   # [N, 3, 1, 1, 3]
    src_x = m[:, 0, ..., 0] * cx + m[:, 0, ..., 1] * cy + m[:, 0, ..., 2]
    src_y = m[:, 1, ..., 0] * cx + m[:, 1, ..., 1] * cy + m[:, 1, ..., 2]
    up_h, up_w = up.shape[1:3]
    sampled = bilinear_sample(up, 2 * src_x - 0.5 + (up_w - 1) / 2,
                              2 * src_y - 0.5 + (up_h - 1) / 2)
    return downsample2x(downsample2x(sampled, 1, margin), 2, margin)


def recolor(images, color):
    """RGB (or grey) images through the affine colour maps color [N, 4, 4] (on a grey image the
    map's mean over the three output channels, as officially)."""
    c = color[:, None, None]                        # [N, 1, 1, 4, 4]
    if images.shape[-1] == 3:   # products and sums, not a matmul: exact in float32 everywhere
        return jnp.sum(c[..., :3, :3] * images[..., None, :], axis=-1) + c[..., :3, 3]
    if images.shape[-1] == 1:
        grey = jnp.mean(c[..., :3, :], axis=-2)     # [N, 1, 1, 4]
        return images * jnp.sum(grey[..., :3], axis=-1, keepdims=True) + grey[..., 3:]
    raise ValueError(f"colour augmentation needs RGB or grey images, not {images.shape[-1]} "
                     f"channels: leave 'c' out of config.augment.pipeline")


# Drawing the transforms.

class Draws(NamedTuple):
    """One image's augmentation parameters for each image (leading axis N)."""
    flip: jax.Array           # int32 [N]: x-flip (1) or not (0)
    quarter_turns: jax.Array  # int32 [N]: rotation by this many quarter turns
    shift: jax.Array          # int32 [N, 2]: integer translation (dx, dy) in pixels
    geometry: jax.Array       # float32 [N, 3, 3]: inverse of the general geometric transform
    geometric: jax.Array      # bool [N]: whether any general geometric transform was drawn
    color: jax.Array          # float32 [N, 4, 4]: the colour map


def draw_bgc(rng, p, shape, pipeline: str = "bgc") -> Draws:
    """The transforms of ADA's pipeline for images of `shape` (N, H, W, C), each applied with
    probability p (a traced scalar is fine); groups left out of `pipeline` draw the identity."""
    n, h, w, channels = shape
    keys = iter(jax.random.split(rng, 32))
    uniform = lambda *s: jax.random.uniform(next(keys), (n, *s))   # noqa: E731
    normal = lambda *s: jax.random.normal(next(keys), (n, *s))     # noqa: E731
    applies = lambda prob=p: uniform() < prob                       # noqa: E731
    zeros = jnp.zeros((n,), jnp.int32)
    flip, quarter_turns, shift = zeros, zeros, jnp.zeros((n, 2), jnp.int32)
    if "b" in pipeline:
        flip = jnp.where(applies(), jax.random.randint(next(keys), (n,), 0, 2), 0)
        turns = (jax.random.randint(next(keys), (n,), 0, 4) if h == w else
                 2 * jax.random.randint(next(keys), (n,), 0, 2))   # non-square: 0 or 180 only
        quarter_turns = jnp.where(applies(), turns, 0)
        t = (uniform(2) * 2 - 1) * XINT_MAX
        t = jnp.where(applies()[:, None], t, 0.0)
        shift = jnp.round(t * jnp.asarray([w, h], jnp.float32)).astype(jnp.int32)

    geometry = jnp.broadcast_to(jnp.eye(3), (n, 3, 3))
    geometric = jnp.zeros((n,), bool)
    if "g" in pipeline:
        # Each factor is the inverse of a forward transform, composed so that the output is
        # translate(post_rotate(aniso(pre_rotate(scale(image))))).
        p_rot = 1 - jnp.sqrt(jnp.clip(1 - p, 0, 1))  # P(pre or post rotation) = p
        on, s = applies(), jnp.exp2(normal() * SCALE_STD)
        s = jnp.where(on, s, 1.0)
        geometry, geometric = _mm(geometry, scale2d(1 / s, 1 / s)), geometric | on
        for i in range(2):  # pre-rotation, anisotropic scaling, post-rotation
            on, theta = applies(p_rot), (uniform() * 2 - 1) * math.pi * ROTATE_MAX
            geometry, geometric = _mm(geometry, rotate2d(jnp.where(on, theta, 0.0))), geometric | on
            if i == 0:
                on, s = applies(), jnp.exp2(normal() * ANISO_STD)
                s = jnp.where(on, s, 1.0)
                geometry, geometric = _mm(geometry, scale2d(1 / s, s)), geometric | on
        on, t = applies(), normal(2) * XFRAC_STD
        t = jnp.where(on[:, None], t, 0.0)
        geometry = _mm(geometry, translate2d(-t[:, 0] * w, -t[:, 1] * h))
        geometric = geometric | on

    color = jnp.broadcast_to(jnp.eye(4), (n, 4, 4))
    if "c" in pipeline:
        b = jnp.where(applies(), normal() * BRIGHTNESS_STD, 0.0)
        color = _mm(translate3d(b), color)
        c = jnp.where(applies(), jnp.exp2(normal() * CONTRAST_STD), 1.0)
        color = _mm(scale3d(c), color)
        luma = LUMA_PROJECTION
        flip_luma = jnp.where(applies(), jax.random.randint(next(keys), (n,), 0, 2), 0)
        color = _mm(jnp.eye(4) - 2 * luma * flip_luma[:, None, None], color)  # Householder
        if channels > 1:
            theta = jnp.where(applies(), (uniform() * 2 - 1) * math.pi * HUE_MAX, 0.0)
            color = _mm(rotate_about_luma(theta), color)
            s = jnp.where(applies(), jnp.exp2(normal() * SATURATION_STD), 1.0)
            color = _mm(luma + (jnp.eye(4) - luma) * s[:, None, None], color)
    return Draws(flip, quarter_turns, shift, geometry, geometric, color)


def apply_draws(images, draws: Draws, pipeline: str = "bgc"):
    """Executes drawn transforms: blits, then the geometric resampling (where drawn), then
    colour. Groups left out of `pipeline` are skipped (no computation)."""
    dtype = images.dtype
    x = images.astype(jnp.promote_types(dtype, jnp.float32))  # bfloat16 in, float32 inside
    if "b" in pipeline:
        x = blit(x, draws.flip, draws.quarter_turns, draws.shift)
    if "g" in pipeline:
        x = jnp.where(draws.geometric[:, None, None, None], resample(x, draws.geometry), x)
    if "c" in pipeline:
        x = recolor(x, draws.color)
    return x.astype(dtype)


def augment(images, rng, p, pipeline: str = "bgc"):
    """ADA's augmentation of images [N, H, W, C]: each transform of `pipeline`'s groups (b, g, c)
    applied per image with probability p. At p = 0 the images come back unchanged, exactly."""
    return apply_draws(images, draw_bgc(rng, p, images.shape, pipeline), pipeline)


# DiffAugment.

def diffaug_color(x, rng):
    """DiffAugment's colour: brightness + U(-0.5, 0.5), then saturation (about each pixel's
    channel mean) x U(0, 2), then contrast (about the image mean) x U(0.5, 1.5), per image."""
    k_b, k_s, k_c = jax.random.split(rng, 3)
    uniform = lambda key: jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype)  # noqa: E731
    x = x + (uniform(k_b) - 0.5)
    mean = jnp.mean(x, axis=-1, keepdims=True)
    x = (x - mean) * (uniform(k_s) * 2) + mean
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * (uniform(k_c) + 0.5) + mean


def diffaug_translation(x, rng, ratio: float = 0.125):
    """DiffAugment's translation: by integers up to ratio of each side, per image, zeros
    shifted in."""
    n, h, w, _ = x.shape
    k_y, k_x = jax.random.split(rng)
    max_dy, max_dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = jax.random.randint(k_y, (n, 1, 1), -max_dy, max_dy + 1)
    dx = jax.random.randint(k_x, (n, 1, 1), -max_dx, max_dx + 1)
    rows = jnp.arange(h)[None, :, None] - dy
    cols = jnp.arange(w)[None, None, :] - dx
    rows, cols = jnp.broadcast_arrays(rows, cols)
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w))[..., None]
    return jnp.where(inside, _gather_pixels(x, jnp.clip(rows, 0, h - 1),
                                            jnp.clip(cols, 0, w - 1)), 0.0)


def diffaug_cutout(x, rng, ratio: float = 0.5):
    """DiffAugment's cutout: a rectangle of ratio of each side (rounded) set to 0, its centre
    drawn per image anywhere in the image (the rectangle clipped at the borders)."""
    n, h, w, _ = x.shape
    k_y, k_x = jax.random.split(rng)
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = jax.random.randint(k_y, (n, 1, 1), 0, h + 1 - size_h % 2) - size_h // 2
    left = jax.random.randint(k_x, (n, 1, 1), 0, w + 1 - size_w % 2) - size_w // 2
    r, c = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
    cut = (r >= top) & (r < top + size_h) & (c >= left) & (c < left + size_w)
    return jnp.where(cut[..., None], 0.0, x)


def diffaugment(images, rng):
    """DiffAugment's "color,translation,cutout" policy (translation 1/8, cutout 1/2), every
    transform on every image."""
    k_color, k_translation, k_cutout = jax.random.split(rng, 3)
    x = images.astype(jnp.promote_types(images.dtype, jnp.float32))
    x = diffaug_cutout(diffaug_translation(diffaug_color(x, k_color), k_translation), k_cutout)
    return x.astype(images.dtype)


# The configuration and the p controller.

def check_config(cfg) -> None:
    """Raises a one-line ConfigError for a config.augment the step cannot use."""
    if cfg.kind not in KINDS:
        raise ConfigError(f"config.augment.kind is {cfg.kind!r}: choose one of {', '.join(KINDS)}")
    if cfg.kind in ("ada", "fixed"):
        if not cfg.pipeline or set(cfg.pipeline) - set(PIPELINE_GROUPS):
            raise ConfigError(f"config.augment.pipeline is {cfg.pipeline!r}: give groups from "
                              f"{PIPELINE_GROUPS!r} (b blit, g geometry, c colour), e.g. 'bgc'")
        if not 0.0 <= cfg.p <= 1.0:
            raise ConfigError(f"config.augment.p is {cfg.p}: give a probability in [0, 1]")
    if cfg.kind == "ada" and (cfg.interval < 1 or cfg.speed_kimg <= 0):
        raise ConfigError("config.augment.interval must be >= 1 and config.augment.speed_kimg "
                          "> 0 for kind 'ada'")


def for_discriminator(cfg, p, rng, images):
    """The images as D sees them under config.augment (`cfg`) at probability p."""
    if cfg.kind == "none":
        return images
    if cfg.kind == "diffaug":
        return diffaugment(images, rng)
    return augment(images, rng, p, cfg.pipeline)


def adjust_p(p, sign_sum, count, *, target: float, speed_kimg: float):
    """ADA's p after one adjustment: r_t = sign_sum / count (the mean sign of D on the count
    reals since the last one) against the target, a step of count / (speed_kimg * 1000)."""
    r_t = sign_sum / jnp.maximum(count, 1.0)
    return jnp.clip(p + jnp.sign(r_t - target) * count / (speed_kimg * 1000.0), 0.0, 1.0)


def step_p(cfg, p):
    """The p a step augments with: cfg.p for kind 'fixed', else the state's p."""
    return jnp.asarray(cfg.p, jnp.float32) if cfg.kind == "fixed" else p


def next_p(cfg, p, stats, real_sign, count: int, step):
    """(p, stats) after train step `step` (0-based), whose `count` reals D scored with mean sign
    real_sign: count * real_sign and count are added to stats = (sum of sign(D(real)), reals
    counted), and after every cfg.interval-th step p is adjusted and stats start again. For
    kind 'fixed', p is cfg.p; otherwise p and stats are unchanged."""
    if cfg.kind == "fixed":
        return jnp.asarray(cfg.p, jnp.float32), stats
    if cfg.kind != "ada":
        return p, stats
    stats = stats + jnp.stack([real_sign * count, jnp.asarray(count, jnp.float32)])
    adjust = (step + 1) % cfg.interval == 0
    new_p = adjust_p(p, stats[0], stats[1], target=cfg.target, speed_kimg=cfg.speed_kimg)
    return jnp.where(adjust, new_p, p), jnp.where(adjust, jnp.zeros_like(stats), stats)
