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

Few programs, compiled ahead (so that clicks do not wait on XLA): a batch of N latents runs padded to
the smallest of BATCH_SIZES that holds it, and a larger one as parts of the largest size (padded
rows repeat the last latent and are dropped from the results), so a new seed count reuses a
compiled program. Every noise mode is an argument of the same programs, not a program of its own:
the noise maps, one [batch, h, w, 1] per layer, are passed in -- const, zeros for "none" or a
registered set, broadcast to the batch, or random noise drawn on the host by numpy from the noise
seed (random_noise), which keeps random number generation out of the compiled programs (jax's
generator more than doubled their compile times). A re-synthesis program exists per resumed layer
only: later layers without an edit get a zero delta. With warm_up, a daemon thread compiles the
programs a session uses, the first page's first (see warm_up_programs); a call that needs a
program the thread is compiling waits for it instead of compiling it twice.
"""
import collections
import dataclasses
import hashlib
import logging
import threading
import time
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.explore.model import GeneratorBundle, load_generator
from stylegan_jax.explore.synthesis_hooks import synthesize
from stylegan_jax.networks import Generator, LayerSpec, const_noise, stage_shape, truncate
from stylegan_jax.utils import cpu_compiler_options, parameter_count, to_uint8

NOISE_MODES = ("const", "random", "none")
CLASS_SAMPLES = 1024    # z's (seeds 0..CLASS_SAMPLES-1) whose mapped w's make a class's average w
MAX_CLASS_AVERAGES = 64  # class averages kept (one per label vector)

NOISE_INPUTS = 16  # noise inputs (noise mode or seed, batch size) kept on device
# Batch sizes programs are compiled for: one image (a click, a live edit) and the page's gallery of
# 8; more latents run 8 at a time (a program per larger size would be a compile to wait for).
BATCH_SIZES = (1, 8)
log = logging.getLogger(__name__)


def padded_size(n: int) -> int:
    """The batch size a batch of n runs at: the smallest of BATCH_SIZES >= n (larger batches run
    in parts of BATCH_SIZES[-1]: see parts)."""
    for size in BATCH_SIZES:
        if n <= size:
            return size
    raise ValueError(f"a batch of {n} is run in parts of {BATCH_SIZES[-1]}, not padded")


def parts(n: int) -> List[slice]:
    """The rows of a batch of n, in the parts it runs as (each at most BATCH_SIZES[-1])."""
    size = BATCH_SIZES[-1]
    return [slice(i, min(i + size, n)) for i in range(0, max(n, 1), size)]


def _pad_rows(x: np.ndarray, size: int, zeros: bool = False) -> np.ndarray:
    """x [n, ...] grown to [size, ...] by repeating its last row (or with zero rows)."""
    extra = size - x.shape[0]
    if extra <= 0:
        return x
    fill = np.zeros_like(x[:1]) if zeros else x[-1:]
    return np.concatenate([x, np.repeat(fill, extra, axis=0)])


def _abstract(tree):
    """A hashable description of the arrays' shapes and dtypes in a pytree (a program's input
    signature, what jax.jit compiles one program for)."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((tuple(np.shape(x)), np.dtype(x.dtype).str) for x in leaves)


# Below this many generator parameters a call is mostly per-call overhead, so code compiled
# without XLA:CPU's optimizations costs little at run time while it compiles several times
# faster. On the bundled 64x32 model (benchmarks/README.md, "Explorer start-up"): cold first
# image 4.9 -> 3.5 s, slowest cold action 3.7 -> 1.6 s, live edits 12 ms p90 either way.
FAST_COMPILE_MAX_PARAMETERS = 4_000_000


def fast_compile_for(setting: str, params) -> bool:
    """Explorer's fast_compile for a setting "on", "off" or "auto" (on for generators with fewer
    than FAST_COMPILE_MAX_PARAMETERS parameters)."""
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"fast_compile must be auto, on or off, got {setting!r}")
    if setting != "auto":
        return setting == "on"
    return parameter_count(params) < FAST_COMPILE_MAX_PARAMETERS


@dataclasses.dataclass
class Rendering:
    """Images in [-1, 1] (float32 [N, H, W, 3]) and, on request, {layer: float32 [N, h, w, c]}."""
    images: np.ndarray
    features: Optional[Dict[str, np.ndarray]] = None

    @property
    def uint8(self) -> np.ndarray:
        """The images as uint8 [N, H, W, 3]."""
        return to_uint8(self.images)


def random_noise(layers: Sequence[LayerSpec], seed: int, part: int, batch: int) -> Dict[str, np.ndarray]:
    """Noise mode "random": {layer: float32 [batch, h, w, 1]} standard normal noise, drawn by
    numpy from (seed, part, the layer's index). Rows are drawn in order, so row i's noise is the
    same whatever the batch size (padding leaves it alone); part: which part of a larger batch
    (parts) it is for, so every image of a batch has noise of its own."""
    return {l.name: np.random.default_rng([seed, part, l.index]).standard_normal(
        (batch, l.height, l.width, 1), np.float32) for l in layers}


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
                 fast_compile: bool = False, frozen_norm_stats: bool = True, warm_up: bool = False):
        """noise_mode: default noise ("const", "random" or "none"); cache_size: how many w's
        activations are kept for re-synthesis; fast_compile: skip XLA:CPU optimizations (compiles
        ~4x faster, runs slower; for tests and one-off scripts); frozen_norm_stats: edited images
        keep the unedited image's instance-norm statistics (local edits, see the module docstring);
        warm_up: compile warm_up_programs() on a background thread now (start_warm_up)."""
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
        # The noise maps of "const" and "none" ({layer: [1, h, w, 1]} on the host), the programs'
        # noise inputs made from them or drawn (noise digest, batch) -> {layer: [batch, h, w, 1]}
        # on device (the NOISE_INPUTS newest), and the zero delta of each layer, on device.
        # (One program for every layer's const noise: drawn op by op, each shape was a compile.)
        const = jax.jit(lambda: {l.name: const_noise(l) for l in self.noise_layers})()
        self._mode_maps = {"const": {name: np.asarray(m) for name, m in const.items()},
                           "none": {l.name: np.zeros((1, l.height, l.width, 1), np.float32)
                                    for l in self.noise_layers}}
        self._noise_inputs = collections.OrderedDict()
        self._zero_deltas = {l.name: jax.device_put(np.zeros((1, l.height, l.width, l.channels),
                                                             np.float32)) for l in self.layers}
        # Compiled programs' input signatures, and the ones being compiled (-> an Event set when
        # done); guarded by _compiling_lock, never held while compiling.
        self._compiled = set()
        self._compiling = {}
        self._compiling_lock = threading.Lock()
        self.warm_up_log: List[Tuple[str, float, Optional[str]]] = []  # (program, seconds, error)
        self.warm_up_done = threading.Event()
        self._warm_up_thread = None
        if warm_up:
            self.start_warm_up()

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

    def _resolve_noise(self, mode: str, noise_seed: int = 0, part: int = 0, batch: int = 1):
        """(the programs' noise input {layer: [batch, h, w, 1]} on device, a digest key naming the
        noise) of a noise mode: its maps broadcast to the batch, or random noise drawn from the
        seed. part: which part of a larger batch (parts) the noise is for: each draws its own
        random noise, so an image's noise depends only on its row."""
        if mode in ("const", "none"):
            maps, digest = self._mode_maps[mode], mode
        elif mode == "random":
            if int(noise_seed) < 0:
                raise ValueError(f"a noise seed must be >= 0, got {noise_seed}")
            maps, digest = None, f"random:{int(noise_seed)}:{part}"
        elif mode in self._noise_maps:
            maps, digest = self._noise_maps[mode]
            digest = "maps:" + digest
        else:
            raise ValueError(f"unknown noise mode {mode!r}: choose one of {', '.join(self.noise_modes)}")
        key = (digest, batch)
        if key not in self._noise_inputs:
            if maps is None:
                maps = random_noise(self.noise_layers, int(noise_seed), part, batch)
            self._noise_inputs[key] = {
                name: jax.device_put(np.broadcast_to(m, (batch,) + m.shape[1:]))
                for name, m in maps.items()}
            while len(self._noise_inputs) > NOISE_INPUTS:
                self._noise_inputs.popitem(last=False)
        self._noise_inputs.move_to_end(key)
        return self._noise_inputs[key], digest

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
        out = []
        for rows in parts(z.shape[0]):
            n = rows.stop - rows.start
            size = padded_size(n)
            y = None if labels is None else _pad_rows(np.asarray(labels[rows], np.float32), size)
            out.append(np.asarray(self._run(("mapping",), self._mapping_fn,
                                            _pad_rows(z[rows], size), y))[:n])
        return np.concatenate(out)

    def _mapping_fn(self, p, z, y):
        return self.module.apply({"params": p}, z, y, method=Generator.mapping)

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

    # ------------------------------------------------------------------ programs
    def _pass(self, params, w, noise, *, edits=None, resume=None, norm_stats=None):
        """One synthesis pass (synthesis_hooks.synthesize) with the given noise maps."""
        return synthesize(self.module, params, w, noise_mode="none", stage=self.stage,
                          edits=edits, resume=resume, norm_stats=norm_stats, noise=noise)

    def _unedited_fn(self, p, w, noise):
        out = self._pass(p, w, noise)
        return out.images, out.features, out.norm_stats

    def _full_fn(self, p, w, noise, deltas, stats):
        out = self._pass(p, w, noise, edits=deltas, norm_stats=stats)
        return out.images, out.features

    def _resume_fn(self, first: str) -> Callable:
        def resume(p, w, noise, cached, delta, rest, stats):
            out = self._pass(p, w, noise, edits=rest, resume=(first, cached + delta),
                             norm_stats=stats)
            return out.images, out.features
        return resume

    def _program(self, key, fn):
        with self._compiling_lock:
            if key not in self._programs:
                self._programs[key] = jax.jit(fn, compiler_options=self._compiler_options)
            return self._programs[key]

    def _ensure_compiled(self, key, fn, args) -> bool:
        """Compiles program `key` for args (arrays or jax.ShapeDtypeStructs, after the params)
        unless it is compiled; waits when another thread is compiling it. True if this call
        compiled it."""
        signature = (key, _abstract(args))
        with self._compiling_lock:
            if signature in self._compiled:
                return False
            event = self._compiling.get(signature)
            if event is None:
                event = self._compiling[signature] = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:
            event.wait()  # a failed compile leaves it uncompiled: the caller's call compiles it
            return False
        try:
            self._program(key, fn).lower(self.params, *args).compile()
            with self._compiling_lock:
                self._compiled.add(signature)
        finally:
            with self._compiling_lock:
                del self._compiling[signature]
            event.set()
        return True

    def _run(self, key, fn, *args):
        """Program `key` (jax.jit of fn(params, *args)) called on args, compiled once per input
        signature."""
        self._ensure_compiled(key, fn, args)
        return self._program(key, fn)(self.params, *args)

    # ------------------------------------------------------------------ warm-up
    def warm_up_programs(self, batch_sizes: Sequence[int] = BATCH_SIZES
                         ) -> Iterator[Tuple[str, tuple, Callable, tuple]]:
        """(description, key, fn, abstract args) of the programs a session uses, in the order a
        session first needs them: the page's first gallery (8 seeds), a click (1 image: mapping,
        every layer's features), the first edit on each layer, the other batch sizes, then edits
        on 8 images (a recipe on seeds). Every noise mode shares these. A generator: the edits'
        shapes are traced only once the first programs are compiling."""
        def spec(shape, dtype=jnp.float32):
            return jax.ShapeDtypeStruct(tuple(shape), dtype)

        def noise(b):
            return {l.name: spec((b, l.height, l.width, 1)) for l in self.noise_layers}

        def synthesis(b):
            labels = spec((b, self.module.label_size)) if self.module.label_size else None
            return [(f"mapping of {b}", ("mapping",), self._mapping_fn,
                     (spec((b, self.latent_size)), labels)),
                    (f"synthesis of {b}", ("unedited",), self._unedited_fn,
                     (spec((b, self.num_layers, self.dlatent_size)), noise(b)))]

        def edits(b):
            args = synthesis(b)[1][3]
            _, feats, stats = jax.eval_shape(self._unedited_fn, self.params, *args)
            stats = stats if self.frozen_norm_stats else None
            zero = {l.name: spec(self._zero_deltas[l.name].shape) for l in self.layers}
            return [(f"edit on {layer.name} of {b}", ("resume", layer.name),
                     self._resume_fn(layer.name),
                     args + (feats[layer.name], zero[layer.name],
                             {l.name: zero[l.name] for l in self.layers[i + 1:]}, stats))
                    for i, layer in enumerate(self.layers)]

        first = [b for b in (8, 1) if b in batch_sizes]
        for b in first:
            yield from synthesis(b)
        if 1 in batch_sizes:
            yield from edits(1)
        for b in batch_sizes:
            if b not in first:
                yield from synthesis(b)
        if 8 in batch_sizes:
            yield from edits(8)

    def start_warm_up(self, batch_sizes: Sequence[int] = BATCH_SIZES) -> threading.Thread:
        """Compiles warm_up_programs() on a daemon thread (once; later calls return that thread).
        Calls meanwhile go on: one that needs a program being compiled waits for it, others run.
        Failures are logged as errors (with the traceback) and recorded in warm_up_log; the
        program is then compiled by the first call that needs it."""
        def work():
            started = time.perf_counter()
            try:
                count = 0
                for name, key, fn, args in self.warm_up_programs(batch_sizes):
                    count += 1
                    begin = time.perf_counter()
                    try:
                        self._ensure_compiled(key, fn, args)
                        self.warm_up_log.append((name, time.perf_counter() - begin, None))
                    except Exception as e:  # pylint: disable=broad-except  (logged, recorded)
                        log.exception("explorer warm-up: compiling %s failed", name)
                        self.warm_up_log.append((name, time.perf_counter() - begin,
                                                 f"{type(e).__name__}: {e}"))
                log.info("explorer warm-up: %d programs in %.1f s", count,
                         time.perf_counter() - started)
            except Exception:  # pylint: disable=broad-except  (listing the programs failed)
                log.exception("explorer warm-up failed: programs compile when first used")
            finally:
                self.warm_up_done.set()

        with self._compiling_lock:
            if self._warm_up_thread is None:
                self._warm_up_thread = threading.Thread(target=work, name="explorer-warm-up",
                                                        daemon=True)
                self._warm_up_thread.start()
            return self._warm_up_thread

    # ------------------------------------------------------------------ synthesis
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
        w = self.check_w(w)
        deltas = self.check_deltas(deltas, w.shape[0])
        with self._lock:
            done = [self._synthesize(w[rows], {k: v if v.shape[0] == 1 else v[rows]
                                               for k, v in deltas.items()},
                                     noise_mode, noise_seed, return_features, use_cache, part)
                    for part, rows in enumerate(parts(w.shape[0]))]
        if len(done) == 1:
            return done[0]
        return Rendering(np.concatenate([r.images for r in done]), None if not return_features else
                         {l.name: np.concatenate([r.features[l.name] for r in done])
                          for l in self.layers})

    def _synthesize(self, w, deltas, noise_mode, noise_seed, return_features, use_cache,
                    part) -> Rendering:
        """synthesize of one part (at most BATCH_SIZES[-1] rows) of checked latents and deltas."""
        n, size = w.shape[0], padded_size(w.shape[0])
        # An all-zero delta (a slider at 0) is no edit: the image is exactly the unedited one.
        # Per-image deltas get zero rows for the padding.
        deltas = {k: _pad_rows(v, size, zeros=True) if v.shape[0] > 1 else v
                  for k, v in deltas.items() if np.any(v)}
        noise, noise_key = self._resolve_noise(
            self.noise_mode if noise_mode is None else noise_mode, noise_seed, part, size)
        w = _pad_rows(w, size)
        if deltas and not use_cache:  # full synthesis; only the statistics may come from the cache
            stats = self._unedited(w, noise, noise_key)[2] if self.frozen_norm_stats else None
            all_deltas = {l.name: deltas.get(l.name, self._zero_deltas[l.name]) for l in self.layers}
            images, feats = self._run(("full",), self._full_fn, w, noise, all_deltas, stats)
            return self._rendering(images, feats if return_features else None, n)
        images, cached, stats = self._unedited(w, noise, noise_key)
        if not deltas:
            return self._rendering(images, cached if return_features else None, n)
        stats = stats if self.frozen_norm_stats else None
        first = min(deltas, key=lambda name: self.layer(name).index)
        later = self.layers[self.layer(first).index + 1:]
        rest = {l.name: deltas.get(l.name, self._zero_deltas[l.name]) for l in later}
        images, after = self._run(("resume", first), self._resume_fn(first), w, noise,
                                  cached[first], deltas[first], rest, stats)
        if not return_features:
            return self._rendering(images, None, n)
        feats = {l.name: cached[l.name] for l in self.layers if l.name not in after}
        feats.update(after)
        return self._rendering(images, feats, n)

    def _unedited(self, w, noise, noise_key):
        """(images, features, instance-norm statistics) of the padded w without edits, from the
        cache (LRU) or computed and cached; noise_key names the noise (a mode with its seed, or
        a digest of the maps)."""
        digest = _digest(w, np.frombuffer(noise_key.encode(), np.uint8))
        if digest not in self._cache:
            self._cache[digest] = self._run(("unedited",), self._unedited_fn, w, noise)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(digest)
        return self._cache[digest]

    def _rendering(self, images, feats, n: int) -> Rendering:
        images = np.asarray(images, np.float32)[:n]
        if feats is None:
            return Rendering(images)
        return Rendering(images, {l.name: np.asarray(feats[l.name], np.float32)[:n]
                                  for l in self.layers})

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
