"""Looking inside one synthesis pass from outside the network: feature maps, edits, re-synthesis
from a layer, and the instance-norm statistics.

The generator (stylegan_jax/networks.py) draws only what the paper draws. The explorer and the
export need more of a synthesis pass:

* every layer's output (the feature maps a person looks at and edits);
* deltas added to chosen layers' outputs (feature-map edits);
* resuming from one layer's given activation, skipping the layers before it (cached
  re-synthesis: while an amount slider moves, only the layers after the edited one run);
* every layer's instance-norm statistics, and a pass that uses given statistics instead of each
  layer's own (local edits: an edited image keeps the unedited image's statistics);
* given noise maps in place of a layer's noise input (a projected image's optimised noise).

`synthesize` runs `Generator.synthesis` under `flax.linen.intercept_methods` with a hook that sees
each `SynthesisLayer` call (by the layer's name) and each `layers.InstanceNorm` and
`layers.NoiseInjection` call inside one.
Interception happens while JAX traces, so `synthesize` may be jitted like any function.
"""
from typing import Any, Dict, Mapping, Optional, Tuple

import flax.linen as nn
import flax.struct

from stylegan_jax import layers
from stylegan_jax.networks import Generator, SynthesisLayer

# Instance-norm statistics of one layer: (mean, inverse RMS), float32 [N, 1, 1, C] each.
NormStats = Tuple[Any, Any]


@flax.struct.dataclass
class SynthesisPass:
    """What one pass produced: images, {layer: output} and {layer: instance-norm statistics} of
    the layers that ran (a resumed pass: the resumed layer and those after it). A pytree, so a
    jitted function may return it."""
    images: Any
    features: Dict[str, Any]
    norm_stats: Dict[str, NormStats]


class _Hooks:
    """The interceptor of one pass (see the module docstring)."""

    def __init__(self, edits, resume, norm_stats, noise):
        self.edits = dict(edits or {})
        self.noise = dict(noise or {})
        self.resume = resume
        self.frozen = dict(norm_stats or {})
        self.skipping = resume is not None
        self.features, self.norm_stats = {}, {}

    def __call__(self, next_fun, args, kwargs, context):
        module = context.module
        if context.method_name == "__call__" and isinstance(module, SynthesisLayer):
            return self._layer(module.name, next_fun, args, kwargs)
        if (context.method_name == "__call__" and isinstance(module, layers.InstanceNorm)
                and isinstance(module.parent, SynthesisLayer)):
            return self._normalize(module.parent.name, module.epsilon, args[0])
        if (context.method_name == "__call__" and isinstance(module, layers.NoiseInjection)
                and isinstance(module.parent, SynthesisLayer) and module.parent.name in self.noise):
            return next_fun(args[0], self.noise[module.parent.name], **kwargs)
        return next_fun(*args, **kwargs)

    def _layer(self, name, next_fun, args, kwargs):
        if self.skipping:
            if name != self.resume[0]:
                return None  # not run: only the resumed layer's successors read its output
            self.skipping = False
            x = self.resume[1]
        else:
            x = next_fun(*args, **kwargs)
            if name in self.edits:
                x = x + self.edits[name].astype(x.dtype)
        self.features[name] = x
        return x

    def _normalize(self, name, epsilon, x):
        stats = self.frozen.get(name)
        if stats is None:
            stats = layers.instance_norm_stats(x, epsilon)
        self.norm_stats[name] = stats
        return layers.instance_norm(x, epsilon, stats=stats)


def synthesize(G: Generator, params, w, *, noise_mode: str = "const", rng=None,
               stage: Optional[int] = None, edits: Optional[Mapping[str, Any]] = None,
               resume: Optional[Tuple[str, Any]] = None,
               norm_stats: Optional[Mapping[str, NormStats]] = None,
               noise: Optional[Mapping[str, Any]] = None) -> SynthesisPass:
    """One synthesis pass of G (at `stage`, default the last, fully faded in) with hooks.

    params: G's parameters ({"mapping_network": ..., "synthesis_network": ...});
    rng: the noise key (noise_mode "random" only);
    edits: {layer name: delta} added to that layer's output (broadcast to it);
    resume: (layer name, activation): skip every layer up to that one and continue from the given
      activation as its output (its edit, if any, already in it);
    norm_stats: {layer name: (mean, inverse RMS)} to use in those layers instead of their own;
    noise: {layer name: noise map [1 or N, h, w, 1]} added (times the layer's learned noise
      strength) in place of that layer's noise input of noise_mode; other layers keep noise_mode's.
    """
    stage = G.num_stages - 1 if stage is None else stage
    running = [spec.name for spec in G.layer_specs if spec.stage <= stage]
    named = (set(edits or {}) | set(norm_stats or {}) | set(noise or {})
             | ({resume[0]} if resume else set()))
    unknown = sorted(named - set(running))
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}: choose from {running}")
    hooks = _Hooks(edits, resume, norm_stats, noise)
    with nn.intercept_methods(hooks):
        images = G.apply({"params": params}, w, stage=stage, noise_mode=noise_mode,
                         rngs=None if rng is None else {"noise": rng}, method=Generator.synthesis)
    return SynthesisPass(images, hooks.features, hooks.norm_stats)
