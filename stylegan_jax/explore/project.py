"""Projection of real images into W and W+: find the w (and noise maps) that redraw an image.

The StyleGAN2 projector (Karras et al., arXiv 1912.04958, appendix D), on this project's
generators: starting from the average w, Adam optimises

  * w: one w for every layer ("w", the space W) or one per layer ("w+", the space W+), and
  * the generator's noise maps (one per synthesis layer),

to minimise  distance(G(w + n, noise), target) + 1e5 * noise_regularization(noise), where

  * n ~ N(0, sigma^2) is noise added to w while optimising, sigma = w_std * 0.05 * max(0, 1 -
    t / 0.75)^2 at t = step / num_steps, w_std the RMS distance of 10 000 mapped w's from their
    mean (so the start explores around the average w and the end is exact);
  * the learning rate is 0.1 * ramp, ramp = min(1, t / 0.05) * (1 - cos(pi * min(1, (1 - t) /
    0.25))) / 2: a linear ramp-up over the first 5% of the steps, a cosine ramp-down over the
    last 25%;
  * noise_regularization sums, over every noise map and over a pyramid of it (2x2 average
    pooling while the smaller side is above 8), the squared mean autocorrelation at a shift of
    one pixel horizontally and vertically: noise maps may not carry the image's content;
  * after every step each noise map is renormalised to zero mean and unit variance.

Adam is optax's (b1 = 0.9, b2 = 0.999, eps = 1e-8, as tf.train.AdamOptimizer; the two place eps
slightly differently, which only matters for near-zero second moments).

The distance (DISTANCES): the official projector uses LPIPS (VGG16 features with learned channel
weights), whose weights cannot be downloaded here. So:

  * "pixel" (the default): a multi-scale pixel distance (mean squared error of the images in
    [-1, 1] at full, 1/2, 1/4, ... resolution, averaged);
  * "discriminator": the model's own discriminator's convolution features (a training checkpoint
    has D), each unit-normalised over channels at every pixel (as LPIPS does with VGG's), squared
    differences summed over channels, averaged over pixels and over layers, plus `pixel_weight`
    times the pixel distance;
  * "lpips": LPIPS VGG16 from a weights file the user provides (LPIPS_LAYOUT documents the .npz),
    as FID takes Inception weights from a file.

On the demo models (benchmarks/bench_project.py, 64x32 portraits) the pixel distance
reconstructs as well as the discriminator's features (PSNR within 0.7 dB either way), keeps
the portraits' attributes as often or more often, and takes 1.7-3.6 times less time: so it is
the default.

Rendering goes through the explorer's synthesis path (synthesis_hooks.synthesize) with the noise
maps given explicitly, so a projection's (w, noise maps) render identically in the Explorer once
its maps are registered (Explorer.add_noise_maps), and edit like any generated image.
Projections of several images run as one batch (independent: per-image losses, noise maps and
Adam moments are elementwise).
"""
import dataclasses
import math
import os
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from stylegan_jax import layers
from stylegan_jax.explore.explorer import Explorer
from stylegan_jax.explore.synthesis_hooks import synthesize
from stylegan_jax.utils import to_uint8

SPACES = ("w", "w+")
DISTANCES = ("discriminator", "pixel", "lpips")


@dataclasses.dataclass(frozen=True)
class ProjectionConfig:
    """The projector's settings; the defaults are the StyleGAN2 projector's."""
    num_steps: int = 1000                 # optimisation steps
    space: str = "w"                      # "w": one w for all layers; "w+": one w per layer
    w_avg_samples: int = 10000            # mapped z's for the average w and w_std
    initial_learning_rate: float = 0.1    # peak learning rate
    lr_rampup_length: float = 0.05        # linear ramp-up, as a fraction of num_steps
    lr_rampdown_length: float = 0.25      # cosine ramp-down, as a fraction of num_steps
    initial_noise_factor: float = 0.05    # noise added to w at the start, times w_std
    noise_ramp_length: float = 0.75       # that noise falls (quadratically) to 0 by this fraction
    regularize_noise_weight: float = 1e5  # weight of noise_regularization
    optimize_noise: bool = True           # optimise the noise maps (else they stay at their start)
    frame_every: int = 10                 # keep the image of every this many steps (0: none)
    seed: int = 0                         # noise-map start and the noise added to w

    def check(self):
        """Raises ValueError naming a bad setting."""
        if self.space not in SPACES:
            raise ValueError(f"unknown space {self.space!r}: choose one of {', '.join(SPACES)}")
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if self.w_avg_samples < 2:
            raise ValueError(f"w_avg_samples must be >= 2, got {self.w_avg_samples}")
        if self.frame_every < 0:
            raise ValueError(f"frame_every must be >= 0, got {self.frame_every}")


# ----------------------------------------------------------------------------------------------
# The schedules and the noise regularisation.

def learning_rate(step, config: ProjectionConfig):
    """The learning rate of a step (0-based; numbers or traced arrays): see the module doc."""
    t = step / config.num_steps
    ramp = jnp.minimum(1.0, (1.0 - t) / config.lr_rampdown_length)
    ramp = 0.5 - 0.5 * jnp.cos(ramp * jnp.pi)
    ramp = ramp * jnp.minimum(1.0, t / config.lr_rampup_length)
    return config.initial_learning_rate * ramp


def w_noise_strength(step, config: ProjectionConfig, w_std):
    """The standard deviation of the noise added to w at a step: see the module doc."""
    t = step / config.num_steps
    return w_std * config.initial_noise_factor * jnp.maximum(0.0, 1.0 - t / config.noise_ramp_length) ** 2


def noise_regularization(maps: Mapping[str, Any]):
    """Per image [N]: the sum over maps {layer: [N, h, w, 1]} and over each map's pyramid (2x2
    mean pooling while min(h, w) > 8) of mean(v * roll(v, 1, x))^2 + mean(v * roll(v, 1, y))^2."""
    total = 0.0
    for name in sorted(maps):
        v = maps[name].astype(jnp.float32)
        while True:
            total = total + (jnp.mean(v * jnp.roll(v, 1, axis=2), axis=(1, 2, 3)) ** 2
                             + jnp.mean(v * jnp.roll(v, 1, axis=1), axis=(1, 2, 3)) ** 2)
            n, h, w, c = v.shape
            if min(h, w) <= 8:
                break
            v = v.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    return total


def normalize_noise(maps: Mapping[str, Any]) -> Dict[str, Any]:
    """Each image's map renormalised to zero mean and unit variance."""
    out = {}
    for name, v in maps.items():
        v = v - jnp.mean(v, axis=(1, 2, 3), keepdims=True)
        out[name] = v / jnp.sqrt(jnp.mean(v ** 2, axis=(1, 2, 3), keepdims=True))
    return out


# ----------------------------------------------------------------------------------------------
# Distances: (params, images [N, H, W, 3], targets [N, H, W, 3], both in [-1, 1]) -> [N].

@dataclasses.dataclass
class Distance:
    """A perceptual distance: fn(params, x, y) -> [N], jit-friendly, with its parameters."""
    name: str
    fn: Callable
    params: Any = None

    def __call__(self, x, y):
        return self.fn(self.params, x, y)


def multiscale_pixel_distance(x, y, num_scales: Optional[int] = None):
    """Per image [N]: the mean squared error of x and y at full, 1/2, 1/4, ... resolution (2x2
    mean pooling; num_scales levels, default down to a smaller side of 4 px), averaged."""
    if num_scales is None:
        num_scales = max(1, int(math.log2(max(min(x.shape[1:3]) // 4, 1))) + 1)
    total = 0.0
    for level in range(num_scales):
        if level:
            x, y = layers.downscale(x), layers.downscale(y)
        total = total + jnp.mean((x - y) ** 2, axis=(1, 2, 3))
    return total / num_scales


def pixel_distance(num_scales: Optional[int] = None) -> Distance:
    """The "pixel" distance: multiscale_pixel_distance."""
    return Distance("pixel", lambda params, x, y: multiscale_pixel_distance(x, y, num_scales))


def _unit_normalize(f, eps: float = 1e-10):
    """Each pixel's feature vector divided by its L2 norm over channels (as LPIPS does)."""
    return f / (jnp.sqrt(jnp.sum(f ** 2, axis=-1, keepdims=True)) + eps)


def feature_distance(fx, fy, weights=None):
    """Per image [N]: sum over channels (times weights, if any) of the squared difference of the
    unit-normalised features [N, h, w, c], averaged over pixels."""
    d = (_unit_normalize(fx) - _unit_normalize(fy)) ** 2
    if weights is not None:
        d = d * weights
    return jnp.mean(jnp.sum(d, axis=-1), axis=(1, 2))


def discriminator_features(D, d_params, images) -> List[Any]:
    """The activations (leaky ReLU of every convolution, fromRGB and the resolution blocks; not
    the base block, whose input mixes the batch by minibatch stddev) of D on images at its last
    stage, in the order D runs them."""
    base = f"{D.base_shape[0]}x{D.base_shape[1]}_conv"
    labels = jnp.zeros((images.shape[0], D.label_size), jnp.float32) if D.label_size else None
    _, state = D.apply({"params": d_params}, images, labels, stage=D.num_stages - 1,
                       capture_intermediates=lambda mdl, method: (
                           method == "__call__" and isinstance(mdl, layers.EqualizedConv)
                           and mdl.name != base),
                       mutable=["intermediates"])
    found = []
    for name, value in state["intermediates"].items():  # insertion order = call order
        if name != "__call__" and "__call__" in value:
            found.append(layers.leaky_relu(value["__call__"][0]))
    return found


def discriminator_distance(D, d_params, pixel_weight: float = 1.0) -> Distance:
    """The "discriminator" distance: the mean over D's layers of feature_distance, plus
    pixel_weight * multiscale_pixel_distance."""

    def fn(params, x, y):
        fx, fy = discriminator_features(D, params, x), discriminator_features(D, params, y)
        d = sum(feature_distance(a, b) for a, b in zip(fx, fy)) / len(fx)
        return d + pixel_weight * multiscale_pixel_distance(x, y) if pixel_weight else d

    return Distance("discriminator", fn, d_params)


# LPIPS (Zhang et al., arXiv 1801.03924), VGG16 variant.
LPIPS_LAYOUT = """LPIPS VGG16 weights file (.npz, float32 arrays):
  conv{i}/kernel  [3, 3, C_in, C_out]  (HWIO) for i = 0..12: VGG16's 13 3x3 convolutions in order
                                       (torchvision vgg16().features[j].weight, j = 0, 2, 5, 7,
                                       10, 12, 14, 17, 19, 21, 24, 26, 28, transposed (2, 3, 1, 0))
  conv{i}/bias    [C_out]
  lin{k}          [C_k] for k = 0..4: LPIPS's non-negative channel weights of the ReLU outputs
                                       of convs 1, 3, 6, 9, 12 (lpips' lin{k}.model.1.weight,
                                       [1, C_k, 1, 1], flattened)
Blocks of 2, 2, 3, 3, 3 convolutions (each with ReLU, padding 1); 2x2 max pooling before blocks
2-5. Inputs in [-1, 1] are shifted and scaled by LPIPS's constants first. The real VGG16 has
C = 64, 128, 256, 512, 512; other widths are accepted if the shapes chain."""
LPIPS_BLOCKS = (2, 2, 3, 3, 3)
LPIPS_SHIFT = np.asarray([-0.030, -0.088, -0.188], np.float32)
LPIPS_SCALE = np.asarray([0.458, 0.448, 0.450], np.float32)


def load_lpips(path: str) -> Dict[str, Any]:
    """LPIPS parameters {"convs": [(kernel, bias)] * 13, "lins": [weights] * 5} from a file in
    LPIPS_LAYOUT; ValueError naming what is wrong otherwise."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no LPIPS weights at {path}: give an .npz in this layout:\n"
                                f"{LPIPS_LAYOUT}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k], np.float32) for k in data.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not an .npz file ({e}): LPIPS weights need this layout:\n"
                         f"{LPIPS_LAYOUT}") from None
    expected = {f"conv{i}/{p}" for i in range(sum(LPIPS_BLOCKS)) for p in ("kernel", "bias")}
    expected |= {f"lin{k}" for k in range(len(LPIPS_BLOCKS))}
    if set(arrays) != expected:
        missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
        raise ValueError(f"{path} is not in the LPIPS layout (missing {missing[:4]}"
                         f"{'...' if len(missing) > 4 else ''}, unexpected {extra[:4]}"
                         f"{'...' if len(extra) > 4 else ''}); the layout:\n{LPIPS_LAYOUT}")
    convs, lins, channels = [], [], 3
    for i in range(sum(LPIPS_BLOCKS)):
        kernel, bias = arrays[f"conv{i}/kernel"], arrays[f"conv{i}/bias"]
        if kernel.ndim != 4 or kernel.shape[:3] != (3, 3, channels) or bias.shape != kernel.shape[3:]:
            raise ValueError(f"{path}: conv{i}/kernel has shape {list(kernel.shape)} and bias "
                             f"{list(bias.shape)}, expected [3, 3, {channels}, C] and [C]: "
                             f"the layout:\n{LPIPS_LAYOUT}")
        channels = kernel.shape[3]
        convs.append((kernel, bias))
    ends = np.cumsum(LPIPS_BLOCKS) - 1
    for k, end in enumerate(ends):
        lin, want = arrays[f"lin{k}"].reshape(-1), convs[end][0].shape[3]
        if lin.shape != (want,):
            raise ValueError(f"{path}: lin{k} has {lin.size} weights, conv{end} has {want} "
                             f"channels: the layout:\n{LPIPS_LAYOUT}")
        lins.append(lin)
    return {"convs": convs, "lins": lins}


def lpips_features(params, images) -> List[Any]:
    """The five ReLU taps of LPIPS's VGG16 for images [N, H, W, 3] in [-1, 1]."""
    x = (images - LPIPS_SHIFT) / LPIPS_SCALE
    taps, i = [], 0
    for block, size in enumerate(LPIPS_BLOCKS):
        if block:
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        for _ in range(size):
            kernel, bias = params["convs"][i]
            x = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = jax.nn.relu(x + bias)
            i += 1
        taps.append(x)
    return taps


def lpips(params, x, y):
    """Per image [N]: LPIPS(x, y), images in [-1, 1]; images taller than 256 px are mean-pooled
    to about 256 first (as the official projector does for VGG)."""
    factor = x.shape[1] // 256
    if factor > 1:
        n, h, w, c = x.shape
        pool = lambda a: a[:, :h // factor * factor, :w // factor * factor].reshape(
            n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))
        x, y = pool(x), pool(y)
    fx, fy = lpips_features(params, x), lpips_features(params, y)
    return sum(feature_distance(a, b, lin) for a, b, lin in zip(fx, fy, params["lins"]))


def lpips_distance(path: str) -> Distance:
    """The "lpips" distance with weights from a file in LPIPS_LAYOUT."""
    params = load_lpips(path)
    return Distance("lpips", lpips, jax.tree.map(jnp.asarray, params))


def make_distance(kind: Optional[str], discriminator=None, *, lpips_path: Optional[str] = None,
                  pixel_weight: float = 1.0) -> Distance:
    """A distance by name (DISTANCES; None: "pixel"); "discriminator" needs discriminator =
    (D, params)."""
    kind = kind or "pixel"
    if kind == "discriminator":
        if discriminator is None:
            raise ValueError("the discriminator distance needs a checkpoint with a discriminator "
                             "(a training workdir, not an exported .npz): use distance 'pixel' "
                             "or 'lpips'")
        return discriminator_distance(*discriminator, pixel_weight=pixel_weight)
    if kind == "pixel":
        return pixel_distance()
    if kind == "lpips":
        if not lpips_path:
            raise ValueError(f"the lpips distance needs a weights file (--lpips=FILE.npz):\n{LPIPS_LAYOUT}")
        return lpips_distance(lpips_path)
    raise ValueError(f"unknown distance {kind!r}: choose one of {', '.join(DISTANCES)}")


# ----------------------------------------------------------------------------------------------
# The projector.

def w_statistics(explorer: Explorer, num_samples: int = 10000, seed: int = 123,
                 batch_size: int = 2000) -> Tuple[np.ndarray, float]:
    """(mean w [dlatent], w_std) of num_samples mapped z ~ N(0, 1) (RandomState(seed), as the
    official projector): w_std = sqrt(sum |w - mean|^2 / num_samples). A conditional generator's
    z's get all-zero labels (Explorer.sample_w)."""
    w = explorer.sample_w(num_samples, seed, batch_size).astype(np.float64)
    mean = w.mean(axis=0)
    return mean.astype(np.float32), float(np.sqrt(np.sum((w - mean) ** 2) / num_samples))


def psnr(a, b) -> np.ndarray:
    """Per image: the PSNR in dB of uint8 images [N, H, W, 3] (inf where equal)."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0 ** 2 / mse)


@dataclasses.dataclass
class Projection:
    """What a projection of N images found, and how it went.

    w: float32 [N, num_layers, dlatent] (in W every layer's row is the same w); noise:
    {layer: float32 [N, h, w, 1]}; images: the reconstructions, float32 [N, H, W, 3] in [-1, 1];
    frames: (step, uint8 [N, H, W, 3]) every frame_every steps and after the last; losses and
    distances: [num_steps, N] per step (loss = distance + weighted noise regularisation, at the
    step's noisy w); distance: [N] final, at the found w; psnr: [N] of the reconstruction against
    the target, in dB; seconds: the wall time, compilation included."""
    w: np.ndarray
    noise: Dict[str, np.ndarray]
    images: np.ndarray
    frames: List[Tuple[int, np.ndarray]]
    losses: np.ndarray
    distances: np.ndarray
    distance: np.ndarray
    psnr: np.ndarray
    space: str
    distance_name: str
    seconds: float

    @property
    def uint8(self) -> np.ndarray:
        """The reconstructions as uint8 [N, H, W, 3]."""
        return to_uint8(self.images)

    def noise_maps(self, i: int = 0) -> Dict[str, np.ndarray]:
        """Image i's noise maps {layer: [1, h, w, 1]} (for Explorer.add_noise_maps)."""
        return {k: v[i:i + 1] for k, v in self.noise.items()}


class Projector:
    """Projects images into a generator's W or W+ (see the module doc)."""

    def __init__(self, explorer: Explorer, distance: Distance,
                 config: ProjectionConfig = ProjectionConfig(), *, w_stats=None):
        """w_stats: (mean w, w_std) to use instead of computing them (w_statistics)."""
        config.check()
        self.explorer, self.distance, self.config = explorer, distance, config
        self.w_mean, self.w_std = w_stats if w_stats is not None else w_statistics(
            explorer, config.w_avg_samples)
        self.w_mean = np.asarray(self.w_mean, np.float32)
        self._step = jax.jit(self._step_fn, donate_argnums=(0,))
        self._render = jax.jit(self._render_fn)

    def _images(self, g_params, w, maps):
        ex = self.explorer
        return synthesize(ex.module, g_params, w, noise_mode="const", stage=ex.stage,
                          noise=maps).images

    def _full_w(self, w_var):
        return jnp.broadcast_to(w_var, (w_var.shape[0], self.explorer.num_layers, w_var.shape[2]))

    def _render_fn(self, g_params, d_params, w_var, maps, targets):
        images = self._images(g_params, self._full_w(w_var), maps)
        return images, self.distance.fn(d_params, images, targets)

    def _step_fn(self, state, g_params, d_params, targets, step, key):
        cfg = self.config
        w_var, maps, opt_state = state
        sigma = w_noise_strength(step, cfg, self.w_std)
        w_noise = sigma * jax.random.normal(jax.random.fold_in(key, step), w_var.shape)

        def loss_fn(variables):
            w_var, maps = variables
            images = self._images(g_params, self._full_w(w_var + w_noise), maps)
            dist = self.distance.fn(d_params, images, targets)
            loss = dist + cfg.regularize_noise_weight * noise_regularization(maps)
            return jnp.sum(loss), (loss, dist, images)

        grads, (loss, dist, images) = jax.grad(loss_fn, has_aux=True)((w_var, maps))
        if not cfg.optimize_noise:
            grads = (grads[0], jax.tree.map(jnp.zeros_like, grads[1]))
        updates, opt_state = self._adam.update(grads, opt_state)
        lr = learning_rate(step, cfg)
        w_var, new_maps = jax.tree.map(lambda v, u: v - lr * u, (w_var, maps), updates)
        maps = normalize_noise(new_maps) if cfg.optimize_noise else maps
        return (w_var, maps, opt_state), loss, dist, images

    _adam = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)

    def initial_noise(self, batch: int) -> Dict[str, np.ndarray]:
        """Noise maps to start from: standard normal (seeded by config.seed), [batch, h, w, 1]."""
        rng = np.random.default_rng(self.config.seed)
        return {l.name: rng.standard_normal((batch, l.height, l.width, 1)).astype(np.float32)
                for l in self.explorer.noise_layers}

    def check_targets(self, targets) -> np.ndarray:
        """Targets as float32 [N, H, W, 3] in [-1, 1] (uint8 images are converted)."""
        targets = np.asarray(targets)
        if targets.ndim == 3:
            targets = targets[None]
        if targets.dtype == np.uint8:
            targets = targets.astype(np.float32) / 127.5 - 1.0
        want = (*self.explorer.image_shape, 3)
        if targets.ndim != 4 or targets.shape[1:] != want:
            raise ValueError(f"targets must have shape [N, {want[0]}, {want[1]}, 3] (the model's "
                             f"resolution), got {list(targets.shape)}")
        return targets.astype(np.float32)

    def project(self, targets, callback: Optional[Callable[[int, int, np.ndarray], Any]] = None
                ) -> Projection:
        """Projects targets [N, H, W, 3] (uint8, or float in [-1, 1]) at the model's resolution.

        callback(step, num_steps, distances [N]) is called after every step (steps count from 1);
        if it returns True the projection stops early (the result is that of the last step)."""
        start = time.perf_counter()
        cfg = self.config
        targets = jnp.asarray(self.check_targets(targets))
        n = targets.shape[0]
        rows = 1 if cfg.space == "w" else self.explorer.num_layers
        w_var = jnp.asarray(np.broadcast_to(self.w_mean, (n, rows, self.w_mean.size)).copy())
        maps = jax.tree.map(jnp.asarray, self.initial_noise(n))
        state = (w_var, maps, self._adam.init((w_var, maps)))
        g_params, d_params = self.explorer.params, self.distance.params
        key = jax.random.PRNGKey(cfg.seed)
        losses, distances, frames = [], [], []
        images = None
        for step in range(cfg.num_steps):
            state, loss, dist, images = self._step(state, g_params, d_params, targets,
                                                   jnp.int32(step), key)
            losses.append(np.asarray(loss))
            distances.append(np.asarray(dist))
            if cfg.frame_every and step % cfg.frame_every == 0:
                frames.append((step, to_uint8(np.asarray(images))))
            if callback is not None and callback(step + 1, cfg.num_steps, distances[-1]) is True:
                break
        w_var, maps, _ = state
        final, distance = self._render(g_params, d_params, w_var, maps, targets)
        final = np.asarray(final, np.float32)
        frames.append((len(losses), to_uint8(final)))
        w = np.asarray(self._full_w(w_var), np.float32)
        return Projection(
            w=w, noise={k: np.asarray(v, np.float32) for k, v in maps.items()}, images=final,
            frames=frames, losses=np.stack(losses), distances=np.stack(distances),
            distance=np.asarray(distance), psnr=psnr(to_uint8(final), to_uint8(np.asarray(targets))),
            space=cfg.space, distance_name=self.distance.name,
            seconds=time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------
# Targets: an image file framed at the model's aspect ratio and resolution.

CROPS = ("centre", "face")
# Inputs larger than this are refused before they are decoded (a decompression bomb, or a scan far
# larger than any model here draws).
MAX_INPUT_PIXELS = 40_000_000


def frame_image(image, shape: Tuple[int, int], *, crop: str = "centre", detector=None,
                key: str = "", crop_settings=None) -> np.ndarray:
    """A PIL RGB image framed at shape = (H, W): "centre" takes the largest centred box of that
    aspect ratio; "face" the preparation tools' face crop (prep.crops: the face and as much again
    below it) around the most confident face `detector` finds. Returns uint8 [H, W, 3]."""
    # Imported here: the preparation tools are only needed to read targets.
    from stylegan_jax.prep import crops, images  # pylint: disable=import-outside-toplevel
    if crop == "centre":
        return images.crop_resize(image, images.centre_crop_box(image.size, shape), shape)
    if crop != "face":
        raise ValueError(f"unknown crop {crop!r}: choose one of {', '.join(CROPS)}")
    if detector is None:
        raise ValueError("the face crop needs a face detector (animeface, opencv or boxes)")
    settings = crop_settings or crops.CropSettings(margin=0.1)
    examples, reason, _ = crops.crop_faces(image, key, detector, shape, settings)
    if not examples:
        raise ValueError(f"{key or 'the image'}: {reason.replace('_', ' ')} (the face crop needs "
                         f"a face with room for as much again below it): use the centre crop")
    return examples[0][1]


def read_image(path: str, *, max_pixels: int = MAX_INPUT_PIXELS,
               exif_transpose: bool = True):
    """An image file (PNG, JPEG, ...; at most max_pixels, checked before decoding) as a PIL RGB
    image; FileNotFoundError / ValueError (one line naming the fix) otherwise."""
    from stylegan_jax.prep import images  # pylint: disable=import-outside-toplevel
    try:
        return images.load_rgb(path, max_pixels=max_pixels, exif_transpose=exif_transpose)
    except images.MissingImage:
        raise FileNotFoundError(f"no image at {path}: give a PNG or JPEG file") from None
    except images.UnreadableImage as e:
        raise ValueError(f"not a usable image: {e}: give a PNG or JPEG of at most "
                         f"{max_pixels} pixels") from None


def load_target(path: str, shape: Tuple[int, int], *, max_pixels: int = MAX_INPUT_PIXELS,
                crop: str = "centre", **frame_kwargs) -> np.ndarray:
    """An image file framed by frame_image at shape = (H, W): uint8 [H, W, 3]. The camera's
    orientation tag is applied for the centre crop; face boxes given in a file refer to the stored
    pixels, so the face crop keeps them as stored."""
    image = read_image(path, max_pixels=max_pixels, exif_transpose=crop == "centre")
    frame_kwargs.setdefault("key", os.path.basename(path))
    return frame_image(image, shape, crop=crop, **frame_kwargs)
