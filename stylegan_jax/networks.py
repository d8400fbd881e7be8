"""StyleGAN generator and discriminator with PGGAN progressive growing (NHWC, pure Flax linen).

Reads like NVlabs/stylegan `training/networks_stylegan.py` (Karras et al., arXiv 1812.04948):

  z --(pixel norm, 8 x dense @ lr 0.01)--> w, broadcast to one w per synthesis layer
  const --(per layer: conv, blur, noise, bias, lrelu, instance norm, style from w)--> toRGB

Progressive growing (PGGAN, arXiv 1710.10196 section 2): a network runs at `stage` s, i.e. at the
resolution base_shape * 2**s. While the top block fades in (alpha from 0 to 1) the generator blends
its new toRGB output with the upsampled output of the previous stage, and the discriminator blends
its new top block with fromRGB of the downsampled input. Every stage's parameters exist from
initialization, so checkpoints never change shape while training grows. `stage` is static under
jit; `alpha` may be traced. Images may be rectangular: base_shape (8, 4) grows to (512, 256).

Synthesis layers are named "<H>x<W>_<kind>", e.g. "4x4_const", "4x4_conv", "8x8_conv0_up",
"8x8_conv1"; toRGB / fromRGB layers are "torgb_<H>x<W>" / "fromrgb_<H>x<W>". `synthesis_layers`
lists them in order with their shapes. Tools that look inside a synthesis pass (feature maps, edits,
frozen normalization statistics) intercept `SynthesisLayer` and `layers.InstanceNorm` calls from
outside (stylegan_jax/explore/synthesis_hooks.py); the networks here know nothing of them.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from stylegan_jax import layers


def stage_shape(base_shape: Tuple[int, int], stage: int) -> Tuple[int, int]:
    """(H, W) of the images at a growth stage: base_shape * 2**stage."""
    return (base_shape[0] * 2**stage, base_shape[1] * 2**stage)


def num_features(stage: int, fmap_base: int, fmap_decay: float, fmap_max: int) -> int:
    """Channel count of a stage, the official nf(): fmap_base / 2**(stage * decay), capped."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def _fused(fused_scale: Union[str, bool], shape: Tuple[int, int]) -> bool:
    """Official 'auto': fuse resampling into the conv once the smaller side is >= 128 px (the
    official code keys it on the square resolution; a 2:1 portrait fuses from 256x128)."""
    return min(shape) >= 128 if fused_scale == "auto" else bool(fused_scale)


def _is_one(alpha) -> bool:
    """True when alpha is a Python number equal to 1 (the blend can then be skipped statically)."""
    return isinstance(alpha, (int, float)) and alpha == 1


def _field_names(module_class) -> List[str]:
    """The constructor options of a Flax module class (its dataclass fields but parent and name)."""
    return [f.name for f in dataclasses.fields(module_class) if f.name not in ("parent", "name")]


# ----------------------------------------------------------------------------------------------
# Mapping network.

class MappingNetwork(nn.Module):
    """z (+ label embedding) -> w [N, dlatent_size]."""
    latent_size: int = 512          # dimensionality of z
    label_size: int = 0             # dimensionality of the label vector (0 = unconditional)
    dlatent_size: int = 512         # dimensionality of w
    mapping_layers: int = 8         # number of dense layers
    mapping_fmaps: int = 512        # width of the hidden dense layers
    mapping_lr_mul: float = 0.01    # learning-rate multiplier (StyleGAN appendix C)
    dtype: Any = jnp.float32        # compute dtype

    @nn.compact
    def __call__(self, z, labels=None):
        assert z.ndim == 2 and z.shape[1] == self.latent_size, (z.shape, self.latent_size)
        x = z.astype(jnp.float32)
        if self.label_size:
            if labels is None or labels.shape != (z.shape[0], self.label_size):
                raise ValueError(f"labels must have shape {(z.shape[0], self.label_size)}, "
                                 f"got {None if labels is None else labels.shape}")
            # Official "LabelConcat": a learned embedding of the label joins z before normalizing.
            embed = self.param("label_embedding", nn.initializers.normal(1.0),
                               (self.label_size, self.latent_size), jnp.float32)
            x = jnp.concatenate([x, labels.astype(jnp.float32) @ embed], axis=1)
        x = layers.pixel_norm(x)
        for i in range(self.mapping_layers):
            features = self.dlatent_size if i == self.mapping_layers - 1 else self.mapping_fmaps
            x = layers.EqualizedDense(features, lr_mul=self.mapping_lr_mul, dtype=self.dtype,
                                      name=f"dense{i}")(x)
            x = layers.leaky_relu(x)
        return layers.at_least_f32(x)


# ----------------------------------------------------------------------------------------------
# Synthesis network.

@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer: its name, index (= which w it takes), growth stage, kind ("const",
    "conv" or "up") and output shape."""
    name: str
    index: int
    height: int
    width: int
    channels: int
    stage: int
    kind: str


def synthesis_layers(base_shape: Tuple[int, int], num_stages: int, fmap_base: int = 8192,
                     fmap_decay: float = 1.0, fmap_max: int = 512) -> List[LayerSpec]:
    """The synthesis layers in order: per stage two, [const, conv] at the base and [up, conv]
    (upsampling conv, then conv) above it; layer i takes w[:, i]."""
    specs = []
    for s in range(num_stages):
        h, w = stage_shape(base_shape, s)
        channels = num_features(s + 1, fmap_base, fmap_decay, fmap_max)
        names = [("const", f"{h}x{w}_const"), ("conv", f"{h}x{w}_conv")] if s == 0 else \
                [("up", f"{h}x{w}_conv0_up"), ("conv", f"{h}x{w}_conv1")]
        specs += [LayerSpec(name, len(specs) + j, h, w, channels, s, kind)
                  for j, (kind, name) in enumerate(names)]
    return specs


def layer_names(base_shape: Tuple[int, int], num_stages: int) -> List[str]:
    """Names of the synthesis layers in order; layer i takes w[:, i]."""
    return [spec.name for spec in synthesis_layers(base_shape, num_stages)]


class SynthesisLayer(nn.Module):
    """One synthesis layer: [const | conv | up-conv + blur], noise, bias, lrelu, AdaIN (instance
    norm, then the style from w)."""
    features: int                   # output channels
    kind: str                       # "const", "conv" or "up"
    const_shape: Tuple[int, int] = (4, 4)  # spatial shape of the learned constant ("const" only)
    fused: bool = False             # fused transposed-conv upsampling ("up" only)
    use_noise: bool = True          # per-pixel noise input
    dtype: Any = jnp.float32        # compute dtype

    @nn.compact
    def __call__(self, x, w, noise):
        if self.kind == "const":
            const = self.param("const", nn.initializers.ones, (1, *self.const_shape, self.features))
            x = jnp.broadcast_to(const.astype(self.dtype), (w.shape[0], *self.const_shape, self.features))
        elif self.kind == "conv":
            x = layers.EqualizedConv(self.features, 3, use_bias=False, dtype=self.dtype, name="conv")(x)
        elif self.kind == "up":
            x = layers.EqualizedConv(self.features, 3, use_bias=False, resample="up", fused=self.fused,
                                     dtype=self.dtype, name="conv")(x)
            x = layers.blur(x)  # StyleGAN appendix C: low-pass after upsampling
        else:
            raise ValueError(f"unknown synthesis layer kind {self.kind!r}")
        if self.use_noise:
            x = layers.NoiseInjection(name="noise")(x, noise)
        x = x + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)
        x = layers.leaky_relu(x)
        x = layers.InstanceNorm(name="norm")(x)
        return layers.StyleModulation(dtype=self.dtype, name="style")(x, w)


class SynthesisNetwork(nn.Module):
    """w [N, num_layers, dlatent] -> images [N, H_stage, W_stage, C] at the given stage."""
    base_shape: Tuple[int, int] = (4, 4)  # (H, W) of the constant input
    num_stages: int = 9             # number of resolutions
    dlatent_size: int = 512         # dimensionality of w
    fmap_base: int = 8192           # overall multiplier for the channel counts
    fmap_decay: float = 1.0         # log2 channel reduction per stage
    fmap_max: int = 512             # maximum channel count
    num_channels: int = 3           # image channels
    use_noise: bool = True          # noise inputs
    fused_scale: Union[str, bool] = "auto"  # fused up-conv: True, False or "auto" (smaller side >= 128 px)
    dtype: Any = jnp.float32        # compute dtype

    @property
    def num_layers(self) -> int:
        return 2 * self.num_stages

    @property
    def layer_specs(self) -> List[LayerSpec]:
        """The synthesis layers in order (names, stages, kinds, output shapes)."""
        return synthesis_layers(tuple(self.base_shape), self.num_stages, self.fmap_base,
                                self.fmap_decay, self.fmap_max)

    def _noise(self, key, spec: LayerSpec, batch, noise_mode):
        shape = (spec.height, spec.width)
        if not self.use_noise or noise_mode == "none":
            return jnp.zeros((1, *shape, 1), self.dtype)
        if noise_mode == "const":
            return const_noise(spec, self.dtype)
        if noise_mode == "random":
            return jax.random.normal(jax.random.fold_in(key, spec.index), (batch, *shape, 1), self.dtype)
        raise ValueError(f"unknown noise_mode {noise_mode!r}: choose 'random', 'const' or 'none'")

    def _torgb(self, stage, x):
        h, w = stage_shape(self.base_shape, stage)
        return layers.EqualizedConv(self.num_channels, 1, gain=1.0, dtype=self.dtype,
                                    name=f"torgb_{h}x{w}")(x)

    @nn.compact
    def __call__(self, w, *, stage: int, alpha=1.0, noise_mode: str = "random"):
        """Synthesizes images at `stage`; noise_mode "random" (the "noise" RNG), "const" (fixed per
        layer) or "none"."""
        assert w.shape[1:] == (self.num_layers, self.dlatent_size), (w.shape, self.num_layers)
        assert 0 <= stage < self.num_stages, (stage, self.num_stages)
        # Initialization runs every stage, so that all stages' parameters exist from the start.
        top = self.num_stages - 1 if self.is_initializing() else stage
        key = self.make_rng("noise") if noise_mode == "random" and self.use_noise else None
        x, stage_outputs = None, []
        for spec in self.layer_specs:
            if spec.stage > top:
                break
            x = SynthesisLayer(spec.channels, spec.kind, const_shape=(spec.height, spec.width),
                               fused=_fused(self.fused_scale, (spec.height, spec.width)),
                               use_noise=self.use_noise, dtype=self.dtype, name=spec.name)(
                x, w[:, spec.index], self._noise(key, spec, w.shape[0], noise_mode))
            if spec.kind == "conv":  # the last layer of its stage
                stage_outputs.append(x)
        images = self._torgb(stage, stage_outputs[stage])
        if stage > 0 and (not _is_one(alpha) or self.is_initializing()):
            # PGGAN fade-in: blend with the upsampled output of the previous stage.
            images = layers.lerp(layers.upscale(self._torgb(stage - 1, stage_outputs[stage - 1])),
                                 images, alpha)
        if self.is_initializing():  # every stage's toRGB, so parameters never change shape
            for s in range(self.num_stages):
                if s not in (stage, stage - 1):
                    self._torgb(s, stage_outputs[s])
        return layers.at_least_f32(images)


# ----------------------------------------------------------------------------------------------
# Generator = mapping + synthesis, with truncation.

def const_noise(spec: LayerSpec, dtype=jnp.float32):
    """The noise input of noise_mode "const" for one layer: fixed per layer, shared by the batch,
    [1, height, width, 1]."""
    return jax.random.normal(jax.random.key(1000 + spec.index), (1, spec.height, spec.width, 1), dtype)


def truncate(w, w_avg, psi, cutoff: Optional[int] = None):
    """Truncation trick (StyleGAN section 3): lerp w toward w_avg by psi in layers < cutoff."""
    if cutoff is not None:
        psi = jnp.where(jnp.arange(w.shape[1]) < cutoff, psi, 1.0)[None, :, None]
    return psi * w + (1.0 - psi) * w_avg  # exact at psi = 0 and psi = 1


def update_w_avg(w_avg, w, beta: float = 0.995):
    """Moving average of the mapping output, tracked during training for truncation."""
    return layers.lerp(jnp.mean(w[:, 0], axis=0), w_avg, beta)


def style_mixing(rng, w, w2, prob: float, num_active_layers: int):
    """Style-mixing regularization (StyleGAN section 3.1): with probability `prob`, layers from a
    random crossover point in [1, num_active_layers) take their styles from w2."""
    k_apply, k_cut = jax.random.split(rng)
    cutoff = jax.random.randint(k_cut, (), 1, max(num_active_layers, 2))
    cutoff = jnp.where(jax.random.uniform(k_apply) < prob, cutoff, w.shape[1])
    return jnp.where((jnp.arange(w.shape[1]) < cutoff)[None, :, None], w, w2)


class Generator(nn.Module):
    """StyleGAN generator: the mapping network, w broadcast to every synthesis layer, the synthesis
    network. Parameters: {"mapping_network": ..., "synthesis_network": ...}.

    Build it from one flat set of options with `Generator.create(base_shape=(8, 4), num_stages=7,
    ...)`: each option goes to the network that declares it (dlatent_size and dtype to both), and
    `options()` gives them back (configs, checkpoints and exported files store that flat form).
    """
    mapping_network: MappingNetwork
    synthesis_network: SynthesisNetwork

    @classmethod
    def create(cls, **options) -> "Generator":
        """A generator from the options of MappingNetwork and SynthesisNetwork (their defaults
        for the rest: the paper's 1024x1024 FFHQ network)."""
        mapping, synthesis = _field_names(MappingNetwork), _field_names(SynthesisNetwork)
        unknown = sorted(set(options) - set(mapping) - set(synthesis))
        if unknown:
            raise TypeError(f"unknown generator option(s) {', '.join(unknown)}: choose from "
                            f"{', '.join(sorted(set(mapping) | set(synthesis)))}")
        if "base_shape" in options:
            options = dict(options, base_shape=tuple(options["base_shape"]))
        return cls(MappingNetwork(**{k: v for k, v in options.items() if k in mapping}),
                   SynthesisNetwork(**{k: v for k, v in options.items() if k in synthesis}))

    @nn.nowrap
    def options(self) -> Dict[str, Any]:
        """The flat options `create` takes, as this generator has them."""
        return {name: getattr(network, name)
                for network in (self.mapping_network, self.synthesis_network)
                for name in _field_names(type(network))}

    @nn.nowrap
    def replace(self, **options) -> "Generator":
        """The same generator with some options changed (e.g. dtype=jnp.float32)."""
        return Generator.create(**{**self.options(), **options})

    # The options tools read most, each from the network that owns it.
    latent_size = property(lambda self: self.mapping_network.latent_size)
    label_size = property(lambda self: self.mapping_network.label_size)
    dlatent_size = property(lambda self: self.mapping_network.dlatent_size)
    base_shape = property(lambda self: tuple(self.synthesis_network.base_shape))
    num_stages = property(lambda self: self.synthesis_network.num_stages)
    num_layers = property(lambda self: self.synthesis_network.num_layers)
    num_channels = property(lambda self: self.synthesis_network.num_channels)
    layer_specs = property(lambda self: self.synthesis_network.layer_specs)

    def mapping(self, z, labels=None):
        """z [N, latent] (+ labels [N, label_size]) -> w [N, num_layers, dlatent]."""
        w = self.mapping_network(z, labels)
        return jnp.broadcast_to(w[:, None], (w.shape[0], self.num_layers, w.shape[1]))

    def synthesis(self, w, *, stage: int, alpha=1.0, noise_mode: str = "random"):
        """w [N, num_layers, dlatent] -> images [N, H_stage, W_stage, C]."""
        return self.synthesis_network(w, stage=stage, alpha=alpha, noise_mode=noise_mode)

    def __call__(self, z, labels=None, *, stage: int, alpha=1.0, w_avg=None, psi=1.0,
                 truncation_cutoff: Optional[int] = 8, noise_mode: str = "random"):
        """z -> images, with optional truncation toward w_avg (psi < 1)."""
        w = self.mapping(z, labels)
        if w_avg is not None and not _is_one(psi):
            w = truncate(w, w_avg, psi, truncation_cutoff)
        return self.synthesis(w, stage=stage, alpha=alpha, noise_mode=noise_mode)


# ----------------------------------------------------------------------------------------------
# Discriminator.

# How a conditional discriminator uses the labels (all act on the shared trunk: the features after
# the base block's dense0, "phi(x)"):
#   "switch"     official StyleGAN: dense1 has one output per label column, score = sum(out * y).
#   "projection" Miyato & Koyama (arXiv 1802.05637, eq. 3): score = dense1(phi) + <V y, phi>.
#   "acgan"      Odena et al. (arXiv 1610.09585): an unconditional score plus an auxiliary
#                classifier head, phi -> one logit per label column; D returns (scores, logits)
#                and needs no labels. The losses are in stylegan_jax/conditional.py.
#   "none"       labels are ignored (an unconditional D for a conditional G).
CONDITIONING_MODES = ("switch", "projection", "acgan", "none")


class Discriminator(nn.Module):
    """Mirror of the synthesis network: images [N, H_stage, W_stage, C] -> scores [N].

    With label_size > 0 and conditioning "acgan" it returns (scores [N], class_logits [N, label_size]).
    """
    base_shape: Tuple[int, int] = (4, 4)  # (H, W) of the last block's input
    num_stages: int = 9             # resolutions base .. base * 2**(num_stages - 1)
    label_size: int = 0             # dimensionality of the label vector (0 = unconditional)
    conditioning: str = "switch"    # how labels enter D (see CONDITIONING_MODES; unused when
                                    # label_size = 0): "switch" = the official label switch
    fmap_base: int = 8192           # overall multiplier for the channel counts
    fmap_decay: float = 1.0         # log2 channel reduction per stage
    fmap_max: int = 512             # maximum channel count
    mbstd_group_size: int = 4       # minibatch-stddev group size (PGGAN section 3)
    mbstd_num_features: int = 1     # minibatch-stddev feature maps
    fused_scale: Union[str, bool] = "auto"  # fused conv-down: True, False or "auto" (smaller side >= 128 px)
    dtype: Any = jnp.float32        # compute dtype

    def _nf(self, stage):
        return num_features(stage, self.fmap_base, self.fmap_decay, self.fmap_max)

    def _fromrgb(self, stage, images):
        h, w = stage_shape(self.base_shape, stage)
        x = layers.EqualizedConv(self._nf(stage + 1), 1, dtype=self.dtype, name=f"fromrgb_{h}x{w}")(images)
        return layers.leaky_relu(x)

    def _block(self, stage, x):
        """Conv, blur, conv + 2x downsample: stage s -> stage s - 1."""
        h, w = stage_shape(self.base_shape, stage)
        x = layers.leaky_relu(layers.EqualizedConv(self._nf(stage + 1), 3, dtype=self.dtype, name=f"{h}x{w}_conv0")(x))
        x = layers.EqualizedConv(self._nf(stage), 3, resample="down", fused=_fused(self.fused_scale, (h, w)),
                            dtype=self.dtype, name=f"{h}x{w}_conv1_down")(layers.blur(x))
        return layers.leaky_relu(x)

    @nn.compact
    def __call__(self, images, labels=None, *, stage: int, alpha=1.0):
        assert 0 <= stage < self.num_stages, (stage, self.num_stages)
        shape = stage_shape(self.base_shape, stage)
        assert images.shape[1:] == (*shape, images.shape[-1]), (images.shape, shape)
        images = images.astype(self.dtype)
        x = self._fromrgb(stage, images)
        for s in range(stage, 0, -1):
            x = self._block(s, x)
            if s == stage and (not _is_one(alpha) or self.is_initializing()):
                # PGGAN fade-in: blend with fromRGB of the downsampled input.
                x = layers.lerp(self._fromrgb(stage - 1, layers.downscale(images)), x, alpha)
        if self.is_initializing():  # create every stage's fromRGB and blocks from the start
            for s in range(self.num_stages):
                if s not in (stage, stage - 1):
                    self._fromrgb(s, jnp.zeros((1, *stage_shape(self.base_shape, s), images.shape[-1]), self.dtype))
                if s > stage:
                    self._block(s, jnp.zeros((1, *stage_shape(self.base_shape, s), self._nf(s + 1)), self.dtype))
        # Final block at the base resolution (PGGAN table 2): mbstd, conv, dense, then the output.
        h, w = self.base_shape
        if self.mbstd_group_size > 1:
            x = layers.minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_features)
        x = layers.leaky_relu(layers.EqualizedConv(self._nf(1), 3, dtype=self.dtype, name=f"{h}x{w}_conv")(x))
        features = layers.leaky_relu(layers.EqualizedDense(self._nf(0), dtype=self.dtype, name=f"{h}x{w}_dense0")(x))
        return self._output(features, labels)

    def _output(self, features, labels):
        """The last dense layer on the shared trunk phi(x) = features, conditioned on the labels as
        `conditioning` says (CONDITIONING_MODES)."""
        h, w = self.base_shape
        conditioning = self._conditioning()
        x = layers.EqualizedDense(self.label_size if conditioning == "switch" else 1, gain=1.0,
                                  dtype=self.dtype, name=f"{h}x{w}_dense1")(features)
        x = layers.at_least_f32(x)
        if conditioning == "switch":
            return jnp.sum(x * self._checked_labels(labels, x.shape[0]).astype(x.dtype), axis=1)
        scores = x[:, 0]
        if conditioning == "projection":
            # V's rows are scaled like dense1's kernel (equalized LR), so <V y, phi> starts on the
            # scale of the unconditional score.
            embedding = self.param(f"{h}x{w}_projection", nn.initializers.normal(1.0),
                                   (self.label_size, self._nf(0)), jnp.float32)
            return projection_scores(scores, layers.at_least_f32(features),
                                     self._checked_labels(labels, x.shape[0]),
                                     embedding / jnp.sqrt(self._nf(0)))
        if conditioning == "acgan":
            logits = layers.EqualizedDense(self.label_size, gain=1.0, dtype=self.dtype,
                                           name=f"{h}x{w}_classifier")(features)
            return scores, layers.at_least_f32(logits)
        return scores

    def _conditioning(self) -> str:
        """The effective conditioning: "none" when unconditional; validates the field."""
        if self.conditioning not in CONDITIONING_MODES:
            raise ValueError(f"unknown conditioning {self.conditioning!r}: choose one of "
                             f"{', '.join(CONDITIONING_MODES)}")
        if not self.label_size:
            if self.conditioning in ("projection", "acgan"):
                raise ValueError(f"conditioning {self.conditioning!r} needs labels: set label_size > 0 "
                                 "(use a labelled dataset with data.use_labels)")
            return "none"
        return self.conditioning

    def _checked_labels(self, labels, batch):
        if labels is None or labels.shape != (batch, self.label_size):
            raise ValueError(f"labels must have shape {(batch, self.label_size)}, "
                             f"got {None if labels is None else labels.shape}")
        return labels


def projection_scores(scores, features, labels, embedding):
    """Projection discriminator output (Miyato & Koyama eq. 3): psi(phi) + <y V, phi>.

    scores [N] = psi(phi(x)), features [N, F] = phi(x), labels [N, L], embedding V [L, F].
    A multi-hot y sums the embeddings of its classes (one projection per attribute).
    """
    embedded = labels.astype(features.dtype) @ embedding.astype(features.dtype)
    return scores + jnp.sum(embedded * features, axis=1)
