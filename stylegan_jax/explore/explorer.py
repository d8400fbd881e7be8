"""`Explorer`: generate images, look at every layer's feature maps, re-render edits fast.

All network calls are jitted (eager Flax is very slow on CPU); one program is compiled per kind of
call -- full synthesis, or re-synthesis resuming after a given edited layer -- and kept.

Cached re-synthesis: the first synthesis of a w records every layer's (unedited) activation. A
later call with feature-map edits whose earliest edited layer is L starts from the cached output of
L plus its delta and runs only the layers after L (synthesis_hooks' `resume`), which is what makes
dragging an amount slider interactive. With the same noise the result equals full synthesis with
the same edits (tests check this).

Local edits (frozen normalization statistics): every synthesis layer ends in instance
normalization (the IN of AdaIN), which divides each channel by its mean and RMS over the whole map.
A delta painted on a small region changes those statistics, so every later layer would shift and
rescale each edited channel everywhere: a hairband edit would also recolour the clothes. With
`frozen_norm_stats` (the default) an edited image keeps the unedited image's statistics in every
layer, so a change spreads only as far as the convolutions carry it (the receptive field): an
edit stays local. Unedited images are exactly the generator's.

Noise maps: besides the noise modes (NOISE_MODES), a set of explicit noise maps (one per layer, for
example a projected image's optimised noise) registered with `add_noise_maps(name, maps)` is a
noise mode of its own: noise_mode=name renders with those maps wherever a noise mode is taken
(synthesis, features, recipes, animations), so a projected image is edited like a generated one.
"""
import collections
import dataclasses
import hashlib
import threading
from typing import Dict, List, Mapping, Optional, Sequence, Union

import jax
import numpy as np

from stylegan_jax.explore.model import GeneratorBundle, load_generator
from stylegan_jax.explore.synthesis_hooks import synthesize
from stylegan_jax.networks import Generator, LayerSpec, stage_shape, truncate
from stylegan_jax.utils import cpu_compiler_options, to_uint8

NOISE_MODES = ("const", "random", "none")
CLASS_SAMPLES = 1024    # z's (seeds 0..CLASS_SAMPLES-1) whose mapped w's make a class's average w
MAX_CLASS_AVERAGES = 64  # class averages kept (one per label vector)


@dataclasses.dataclass
class Rendering:
    """Images in [-1, 1] (float32 [N, H, W, 3]) and, on request, {layer: float32 [N, h, w, c]}."""
    images: np.ndarray
    features: Optional[Dict[str, np.ndarray]] = None

    @property
    def uint8(self) -> np.ndarray:
        """The images as uint8 [N, H, W, 3]."""
        return to_uint8(self.images)


def seed_latents(seeds: Sequence[int], latent_size: int) -> np.ndarray:
    """z for integer seeds, float32 [len(seeds), latent_size]; seed s always gives the same z."""
    return np.stack([np.random.default_rng(int(s)).standard_normal(latent_size).astype(np.float32)
                     for s in seeds])


def _digest(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class Explorer:
    """A generator opened for exploration at its full resolution (the last stage)."""

    def __init__(self, bundle: GeneratorBundle, *, noise_mode: str = "const", cache_size: int = 16,
                 fast_compile: bool = False, frozen_norm_stats: bool = True):
        """noise_mode: default noise ("const", "random" or "none"); cache_size: how many w's
        activations are kept for re-synthesis; fast_compile: skip XLA:CPU optimizations (compiles
        ~4x faster, runs slower; for tests and one-off scripts); frozen_norm_stats: edited images
        keep the unedited image's instance-norm statistics (local edits, see the module docstring)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise mode {noise_mode!r}: choose one of {', '.join(NOISE_MODES)}")
        self.module: Generator = bundle.module
        self.params = jax.device_put(bundle.params)
        self.w_avg = np.asarray(bundle.w_avg, np.float32)
        self.provenance = dict(bundle.provenance)
        self.noise_mode = noise_mode
        self.frozen_norm_stats = bool(frozen_norm_stats)
        self.stage = self.module.num_stages - 1
        self.image_shape = stage_shape(tuple(self.module.base_shape), self.stage)
        # (w, noise) digest -> (images, {layer: activation}, {layer: instance-norm statistics})
        self._cache = collections.OrderedDict()
        self._cache_size = cache_size
        self._programs = {}
        self._lock = threading.RLock()  # a web server may call from several threads
        self._compiler_options = cpu_compiler_options(fast_compile)
        self.layers: List[LayerSpec] = self.module.layer_specs
        self._noise_maps = {}  # name -> ({layer: float32 [1, h, w, 1]}, digest of the maps)
        self._class_averages = collections.OrderedDict()  # label bytes -> w [num_layers, dlatent]

    # ------------------------------------------------------------------ construction / description
    @classmethod
    def open(cls, path: str, **kwargs) -> "Explorer":
        """An explorer on a workdir, checkpoint step directory or exported .npz."""
        return cls(load_generator(path), **kwargs)

    @property
    def num_layers(self) -> int:
        return self.module.num_layers

    @property
    def dlatent_size(self) -> int:
        return self.module.dlatent_size

    @property
    def latent_size(self) -> int:
        return self.module.latent_size

    def layer(self, name: str) -> LayerSpec:
        """The layer called `name`; ValueError naming the valid ones otherwise."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"unknown layer {name!r}: choose one of {', '.join(l.name for l in self.layers)}")

    def describe(self) -> dict:
        """What a client needs to know about the model, as JSON-friendly values."""
        return {"image_shape": list(self.image_shape), "latent_size": self.latent_size,
                "dlatent_size": self.dlatent_size, "num_layers": self.num_layers,
                "label_size": self.module.label_size, "noise_mode": self.noise_mode,
                "layers": [dataclasses.asdict(l) for l in self.layers],
                "provenance": self.provenance}

    # ------------------------------------------------------------------ noise maps
    @property
    def noise_layers(self) -> List[LayerSpec]:
        """The layers that take a noise input (all of them, unless the generator has no noise)."""
        return list(self.layers) if self.module.synthesis_network.use_noise else []

    @property
    def noise_modes(self) -> List[str]:
        """NOISE_MODES and the names of the registered noise-map sets."""
        with self._lock:
            return list(NOISE_MODES) + list(self._noise_maps)

    def add_noise_maps(self, name: str, maps: Mapping[str, np.ndarray]) -> str:
        """Registers noise maps {layer: [h, w] or [1, h, w, 1]}, one for every noise layer, as the
        noise mode `name` (re-registering a name replaces its maps). Returns the name."""
        if not isinstance(name, str) or not name or name in NOISE_MODES:
            raise ValueError(f"a noise-map set needs a name other than {', '.join(NOISE_MODES)}, "
                             f"got {name!r}")
        want = {l.name: (1, l.height, l.width, 1) for l in self.noise_layers}
        if set(maps) != set(want):
            raise ValueError(f"noise maps must cover exactly the noise layers {sorted(want)}, got "
                             f"{sorted(maps)}")
        checked = {}
        for layer, shape in want.items():
            m = np.asarray(maps[layer], np.float32)
            m = m.reshape(shape) if m.size == np.prod(shape) else m
            if m.shape != shape or not np.all(np.isfinite(m)):
                raise ValueError(f"noise map for {layer} must be finite with shape {list(shape)} "
                                 f"(or {list(shape[1:3])}), got {list(np.shape(maps[layer]))}")
            checked[layer] = m
        with self._lock:
            self._noise_maps[name] = checked, _digest(*(checked[k] for k in sorted(checked)))
        return name

    def remove_noise_maps(self, name: str) -> None:
        """Forgets a registered noise-map set (a no-op for an unknown name)."""
        with self._lock:
            self._noise_maps.pop(name, None)

    def noise_maps(self, name: str) -> Dict[str, np.ndarray]:
        """The maps of a registered noise-map set, {layer: float32 [1, h, w, 1]}."""
        with self._lock:
            if name not in self._noise_maps:
                raise ValueError(f"unknown noise-map set {name!r}: choose one of "
                                 f"{', '.join(self._noise_maps) or '(none registered)'}")
            return dict(self._noise_maps[name][0])

    def _resolve_noise(self, mode: str):
        """(the network's noise mode, the explicit maps or None, a digest key) of a noise mode."""
        if mode in NOISE_MODES:
            return mode, None, mode
        if mode not in self._noise_maps:
            raise ValueError(f"unknown noise mode {mode!r}: choose one of {', '.join(self.noise_modes)}")
        maps, digest = self._noise_maps[mode]
        # Layers without an explicit map do not exist here (every noise layer has one), so the
        # network's own mode is never used; "const" keeps its programs shared.
        return "const", maps, "maps:" + digest

    # ------------------------------------------------------------------ latents
    def z_from_seeds(self, seeds: Sequence[int]) -> np.ndarray:
        """z [N, latent_size] for integer seeds."""
        return seed_latents(seeds, self.latent_size)

    def mapping(self, z, labels=None) -> np.ndarray:
        """z [N, latent] (+ labels) -> w [N, num_layers, dlatent] (no truncation)."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise ValueError(f"z must have shape [N, {self.latent_size}], got {list(z.shape)}")
        if self.module.label_size and labels is None:
            raise ValueError(f"this generator is conditional: pass labels of shape "
                             f"[N, {self.module.label_size}]")
        fn = self._program(("mapping",), lambda p, z, y: self.module.apply(
            {"params": p}, z, y, method=Generator.mapping))
        labels = None if labels is None else np.asarray(labels, np.float32)
        return np.asarray(fn(self.params, z, labels))

    def truncate(self, w, psi: float, center=None, cutoff: Optional[int] = None) -> np.ndarray:
        """Truncation toward `center` (default the average w; pass another image's w to make
        variations of a "base image"), in layers < cutoff (None = all)."""
        center = self.w_avg if center is None else np.asarray(center, np.float32)
        w = np.asarray(w, np.float32)
        if center.ndim == 3 and center.shape[0] == 1:
            center = center[0]
        return np.asarray(truncate(w, center, np.float32(psi), cutoff), np.float32)

    def class_average(self, label, samples: int = CLASS_SAMPLES) -> np.ndarray:
        """A conditional model's average w of one label vector [label_size]: the mean of the
        mapped w's of seeds 0..samples-1 with that label, [num_layers, dlatent]. Computed once
        per label and kept (the MAX_CLASS_AVERAGES newest); a truncation center for images of
        that class (w_avg is the average over the training labels)."""
        size = self.module.label_size
        label = np.asarray(label, np.float32)
        if not size:
            raise ValueError("this generator is not conditional: it has no class averages")
        if label.shape != (size,) or not np.all(np.isfinite(label)):
            raise ValueError(f"a label must be {size} finite numbers, got shape {list(label.shape)}")
        key = (label.tobytes(), int(samples))
        with self._lock:
            if key not in self._class_averages:
                z = self.z_from_seeds(range(samples))
                w = self.mapping(z, np.repeat(label[None], samples, axis=0))
                self._class_averages[key] = w.astype(np.float64).mean(axis=0).astype(np.float32)
                while len(self._class_averages) > MAX_CLASS_AVERAGES:
                    self._class_averages.popitem(last=False)
            self._class_averages.move_to_end(key)
            return self._class_averages[key]

    def w_from_seeds(self, seeds: Sequence[int], psi: float = 1.0, center=None, labels=None) -> np.ndarray:
        """w [N, num_layers, dlatent] of integer seeds, truncated by psi toward `center`."""
        w = self.mapping(self.z_from_seeds(seeds), labels)
        return w if psi == 1.0 else self.truncate(w, psi, center)

    def sample_w(self, num_samples: int, seed: int = 0, batch_size: int = 2000) -> np.ndarray:
        """w [num_samples, dlatent] (one per image: the mapping gives every layer the same) of
        z ~ N(0, 1) drawn by numpy's RandomState(seed), untruncated, mapped batch_size at a time;
        a conditional generator's z's get all-zero labels."""
        z = np.random.RandomState(seed).randn(num_samples, self.latent_size).astype(np.float32)
        labels = (np.zeros((num_samples, self.module.label_size), np.float32)
                  if self.module.label_size else None)
        return np.concatenate([self.mapping(z[i:i + batch_size],
                                            None if labels is None else labels[i:i + batch_size])[:, 0]
                               for i in range(0, num_samples, batch_size)])

    # ------------------------------------------------------------------ synthesis
    def _pass(self, params, w, key, noise_mode, *, edits=None, resume=None, norm_stats=None,
              noise=None, with_norm_stats=False):
        """(images, {layer: output}) of one synthesis pass (synthesis_hooks.synthesize), and
        {layer: instance-norm statistics} with_norm_stats; noise: explicit {layer: noise map}."""
        out = synthesize(self.module, params, w, noise_mode=noise_mode, rng=key, stage=self.stage,
                         edits=edits, resume=resume, norm_stats=norm_stats, noise=noise)
        if with_norm_stats:
            return out.images, out.features, out.norm_stats
        return out.images, out.features

    def _program(self, key, fn):
        if key not in self._programs:
            self._programs[key] = jax.jit(fn, compiler_options=self._compiler_options)
        return self._programs[key]

    def check_w(self, w) -> np.ndarray:
        """w as float32 [N, num_layers, dlatent] (a single [num_layers, dlatent] gets N = 1)."""
        w = np.asarray(w, np.float32)
        if w.ndim == 2:
            w = w[None]
        if w.shape[1:] != (self.num_layers, self.dlatent_size):
            raise ValueError(f"w must have shape [N, {self.num_layers}, {self.dlatent_size}], "
                             f"got {list(w.shape)}")
        return w

    def check_deltas(self, deltas: Optional[Mapping[str, np.ndarray]], batch: int) -> Dict[str, np.ndarray]:
        """Validates {layer: delta}; each delta broadcasts to [batch, h, w, c] of its layer."""
        out = {}
        for name, delta in (deltas or {}).items():
            layer = self.layer(name)
            delta = np.asarray(delta, np.float32)
            want = (layer.height, layer.width, layer.channels)
            if delta.ndim == 3:
                delta = delta[None]
            if delta.ndim != 4 or delta.shape[1:] != want or delta.shape[0] not in (1, batch):
                raise ValueError(f"delta for {name} must have shape [1 or {batch}, {want[0]}, "
                                 f"{want[1]}, {want[2]}], got {list(delta.shape)}")
            out[name] = delta
        return out

    def synthesize(self, w, deltas: Optional[Mapping[str, np.ndarray]] = None, *,
                   noise_mode: Optional[str] = None, noise_seed: int = 0,
                   return_features: bool = False, use_cache: bool = True) -> Rendering:
        """Images of w [N, num_layers, dlatent] with {layer: delta} added to feature maps.

        noise_mode: "const" (default of the explorer), "random" (drawn from noise_seed), "none",
        or the name of a registered noise-map set (add_noise_maps). With use_cache, edits re-run only the layers after the earliest edited one.
        """
        with self._lock:
            return self._synthesize(w, deltas, noise_mode, noise_seed, return_features, use_cache)

    def _synthesize(self, w, deltas, noise_mode, noise_seed, return_features, use_cache) -> Rendering:
        w = self.check_w(w)
        # An all-zero delta (a slider at 0) is no edit: the image is exactly the unedited one.
        deltas = {k: v for k, v in self.check_deltas(deltas, w.shape[0]).items() if np.any(v)}
        mode, maps, noise_key = self._resolve_noise(
            self.noise_mode if noise_mode is None else noise_mode)
        key = jax.random.PRNGKey(int(noise_seed))
        if deltas and not use_cache:  # full synthesis; only the statistics may come from the cache
            stats = (self._unedited(w, mode, maps, noise_key, noise_seed, key)[2]
                     if self.frozen_norm_stats else None)
            images, feats = self._full(mode, maps, deltas)(self.params, w, key, deltas, stats, maps)
            return self._rendering(images, feats if return_features else None)
        images, cached, stats = self._unedited(w, mode, maps, noise_key, noise_seed, key)
        if not deltas:
            return self._rendering(images, cached if return_features else None)
        stats = stats if self.frozen_norm_stats else None
        order = sorted(deltas, key=lambda n: self.layer(n).index)
        first, rest = order[0], {n: deltas[n] for n in order[1:]}
        start = cached[first] + deltas[first]
        fn = self._program(("resume", mode, maps is not None, first, tuple(order[1:])),
                           lambda p, w, k, s, d, st, n: self._pass(
                               p, w, k, mode, edits=d, resume=(first, s), norm_stats=st, noise=n))
        images, after = fn(self.params, w, key, start, rest, stats, maps)
        if not return_features:
            return self._rendering(images, None)
        feats = {n: cached[n] for n in cached if self.layer(n).index < self.layer(first).index}
        feats[first] = start
        feats.update(after)
        return self._rendering(images, feats)

    def _full(self, mode, maps, deltas):
        """The full-synthesis program (images and all features) for edits of these layers, taking
        the instance-norm statistics to keep (or None: each layer's own) and the noise maps (or
        None: the mode's)."""
        return self._program(("full", mode, maps is not None, tuple(sorted(deltas))),
                             lambda p, w, k, d, st, n: self._pass(
                                 p, w, k, mode, edits=d, norm_stats=st, noise=n))

    def _unedited(self, w, mode, maps, noise_key, noise_seed, key):
        """(images, features, instance-norm statistics) of w without edits, from the cache (LRU)
        or computed and cached; noise_key names the noise (a mode, or a digest of the maps)."""
        # The noise seed only matters for random noise.
        digest = _digest(w, np.frombuffer(noise_key.encode(), np.uint8),
                         np.asarray(noise_seed if mode == "random" else 0))
        if digest not in self._cache:
            fn = self._program(("unedited", mode, maps is not None), lambda p, w, k, n: self._pass(
                p, w, k, mode, noise=n, with_norm_stats=True))
            images, feats, stats = fn(self.params, w, key, maps)
            self._cache[digest] = images, feats, stats
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(digest)
        return self._cache[digest]

    def _rendering(self, images, feats) -> Rendering:
        images = np.asarray(images, np.float32)
        if feats is None:
            return Rendering(images)
        return Rendering(images, {l.name: np.asarray(feats[l.name], np.float32) for l in self.layers})

    def features(self, w, layer: Optional[str] = None,
                 **kwargs) -> Union[np.ndarray, Dict[str, np.ndarray]]:
        """Unedited feature maps of w: one layer's [N, h, w, c], or all as {layer: ...}.

        kwargs are synthesize's (noise_mode, noise_seed, use_cache); a return_features among
        them (forwarded by apply_recipe) is ignored: features are always returned here."""
        kwargs.pop("return_features", None)
        if layer is not None:
            self.layer(layer)
        feats = self.synthesize(w, return_features=True, **kwargs).features
        return feats if layer is None else feats[layer]
