"""NVIDIA's StyleGAN v1 networks (NVlabs/stylegan, training/networks_stylegan.py) as this
project's Generator and Discriminator parameters.

A training snapshot pickle holds (G, D, Gs): G and Gs are `G_style` networks with two components,
`G_mapping` and `G_synthesis`; D is `D_basic`. Their variables map one to one onto the
parameters here, because both store equalized-LR weights the same way (drawn from
N(0, 1 / lrmul), used as stored * gain / sqrt(fan_in) * lrmul; biases used as stored * lrmul),
conv kernels as [kh, kw, in, out] and dense kernels as [in, out]. What differs is layout:

* the official activations are NCHW, these are NHWC: the learned constant [1, C, 4, 4] becomes
  [1, 4, 4, C], the constant noise inputs [1, 1, H, W] become [1, H, W, 1], and D's Dense0,
  which flattens its [C, 4, 4] input channel-major, has its rows reordered to (h, w, c);
* names: `G_synthesis/{H}x{W}/Conv0_up/weight` -> `synthesis_network/{H}x{W}_conv0_up/conv/kernel`,
  `ToRGB_lod{L}` -> `torgb_{H}x{W}` (lod L = num_stages - 1 - stage), `D/FromRGB_lod{L}` ->
  `fromrgb_{H}x{W}`, `D/{H}x{W}/Conv1_down` -> `{H}x{W}_conv1_down`, `StyleMod` -> `style/dense`,
  `Noise/weight` -> `noise/weight`, `G_mapping/Dense{i}` -> `mapping_network/dense{i}`,
  `LabelConcat/weight` -> `label_embedding`, G's `dlatent_avg` -> the tracked w average.

Fused up/down-sampling convolutions store the same 3x3 weight as the separate ones (the 4x4
kernel is made from it at run time). The official fused downsampling is the same strided
correlation as layers.EqualizedConv's. The official fused upsampling (tf.nn.conv2d_transpose of
that 4x4 kernel, unflipped) equals "upscale, then conv" with the 3x3 kernel mirrored in both
spatial axes, whereas layers.EqualizedConv's fused form equals "upscale, then conv" with the kernel
as it is: those kernels (the synthesis layers' `Conv0_up` from 128x128 with fused_scale 'auto')
are imported mirrored.
Every variable of the pickle is used exactly once (the scalar `lod` gives the stage and fade-in,
`noise{i}` the official constant noise inputs) or the import fails, naming it.
"""
import collections
import dataclasses
import math
import re
from typing import Any, Dict, Tuple

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.networks import Discriminator, Generator, num_features, stage_shape, synthesis_layers
from stylegan_jax.pretrained import tf_pickle
from stylegan_jax.pretrained.tf_pickle import NetworkState

BASE_SHAPE = (4, 4)

# Build options of the official networks that change the computation, with the only value the
# networks here implement (absent = the official default, which is that value).
_SUPPORTED = {
    "G_synthesis": {"use_styles": True, "const_input_layer": True, "nonlinearity": "lrelu",
                    "use_wscale": True, "use_pixel_norm": False, "use_instance_norm": True,
                    "blur_filter": [1, 2, 1]},
    "G_mapping": {"mapping_nonlinearity": "lrelu", "use_wscale": True, "normalize_latents": True},
    "D_basic": {"nonlinearity": "lrelu", "use_wscale": True, "blur_filter": [1, 2, 1]},
}
# Build functions of the other NVIDIA networks in the same pickle format, to name them.
_OTHER_FAMILIES = {"G_main": "StyleGAN2", "G_synthesis_stylegan2": "StyleGAN2",
                   "D_stylegan2": "StyleGAN2", "G_paper": "Progressive GAN",
                   "D_paper": "Progressive GAN"}


class NotStyleGANError(ValueError):
    """The pickle holds networks, but not StyleGAN v1 ones this project can represent."""


@dataclasses.dataclass
class ImportedStyleGAN:
    """A StyleGAN v1 snapshot as this project's parameters (nested dicts of float32 arrays)."""
    generator_options: Dict[str, Any]      # Generator.create options, besides the shared ones
    discriminator_options: Dict[str, Any]  # Discriminator options, besides the shared ones
    num_stages: int                        # resolutions 4x4 .. 4 * 2**(num_stages - 1)
    label_size: int                        # 0 = unconditional
    g_params: Any                          # from G
    d_params: Any                          # from D
    g_ema_params: Any                      # from Gs (the generator average)
    w_avg: np.ndarray                      # Gs's dlatent_avg, float32 [dlatent_size]
    stage: int                             # the stage the snapshot was training (from its lod)
    alpha: float                           # the fade-in of that stage (1 = fully in)
    constant_noise: Dict[str, np.ndarray]  # Gs's noise{i} by synthesis layer, [1, H, W, 1]
    info: Dict[str, Any]                   # JSON: what the pickle said (names, options, lod)

    @property
    def resolution(self) -> int:
        return stage_shape(BASE_SHAPE, self.num_stages - 1)[0]

    def networks(self, dtype=jnp.float32) -> Tuple[Generator, Discriminator]:
        """The Generator and Discriminator these parameters belong to."""
        shared = dict(base_shape=BASE_SHAPE, num_stages=self.num_stages,
                      label_size=self.label_size, dtype=dtype)
        return (Generator.create(**shared, **self.generator_options),
                Discriminator(**shared, **self.discriminator_options))


class _Variables:
    """A network's variables, each to be taken exactly once."""

    def __init__(self, net: NetworkState, where: str):
        self._left = collections.OrderedDict(net.variables)
        self.where = where

    def __contains__(self, name):
        return name in self._left

    def shape(self, name) -> Tuple[int, ...]:
        return tuple(self._get(name).shape)

    def _get(self, name):
        if name not in self._left:
            raise NotStyleGANError(f"{self.where} has no variable {name}, which a StyleGAN v1 "
                                   f"network of this shape has")
        return self._left[name]

    def take(self, name) -> np.ndarray:
        value = np.asarray(self._get(name), np.float32)
        del self._left[name]
        return value

    def names(self):
        return list(self._left)

    def check_all_used(self):
        if self._left:
            names = list(self._left)
            raise NotStyleGANError(
                f"{self.where} has {len(names)} variable(s) a StyleGAN v1 network does not "
                f"({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}): it is another "
                f"architecture")


def _family_error(net: NetworkState, where: str, wanted: str) -> NotStyleGANError:
    family = _OTHER_FAMILIES.get(net.build_func_name)
    what = f"a {family} network" if family else "not a StyleGAN v1 network"
    return NotStyleGANError(f"{where} is {what} (build function {net.build_func_name}, expected "
                            f"{wanted}): only NVlabs/stylegan (v1) pickles can be imported")


def _check_network(net: NetworkState, where: str, wanted: str, components=()) -> None:
    if net.build_func_name != wanted:
        raise _family_error(net, where, wanted)
    for role, func in components:
        comp = net.components.get(role)
        if comp is None:
            raise NotStyleGANError(f"{where} has no {role} component (found: "
                                   f"{', '.join(net.components) or 'none'}); StyleGAN v1's "
                                   f"{wanted} has {func}")
        if comp.build_func_name != func:
            raise _family_error(comp, f"{where}'s {role} network", func)


def _check_options(net: NetworkState, where: str, func: str) -> None:
    for name, value in _SUPPORTED[func].items():
        found = net.static_kwargs.get(name, value)
        if isinstance(value, list):
            found = list(found) if found is not None else found
        if found != value:
            raise NotStyleGANError(f"{where} was built with {name}={found!r}; the networks here "
                                   f"implement only the StyleGAN paper's {name}={value!r}")


def _fused_option(kwargs: Dict[str, Any], where: str):
    fused = kwargs.get("fused_scale", "auto")
    if fused not in ("auto", True, False):
        raise NotStyleGANError(f"{where} has fused_scale={fused!r}: expected 'auto', True or False")
    return fused


def fit_fmaps(channels: Dict[int, int], kwargs: Dict[str, Any], where: str) -> Dict[str, Any]:
    """fmap_base / fmap_decay / fmap_max giving the channel count `channels[s]` = nf(s) of each
    stage index s: the build options if they do, else the ones that fit (decay 1)."""
    def fits(base, decay, cap):
        return all(num_features(s, base, decay, cap) == c for s, c in channels.items())

    options = (kwargs.get("fmap_base", 8192), kwargs.get("fmap_decay", 1.0),
               kwargs.get("fmap_max", 512))
    candidates = [options]
    cap = max(channels.values())
    below = sorted(s for s, c in channels.items() if c < cap)
    candidates.append((channels[below[0]] * 2**below[0] if below else cap * 2**max(channels),
                       1.0, cap))
    for base, decay, cap in candidates:
        if fits(base, decay, cap):
            return dict(fmap_base=int(base), fmap_decay=float(decay), fmap_max=int(cap))
    raise NotStyleGANError(f"{where}'s channel counts per stage {dict(sorted(channels.items()))} "
                           f"are not min(fmap_base / 2**(s * fmap_decay), fmap_max) for any "
                           f"fmap_base, fmap_decay, fmap_max")


def _stage_and_alpha(lod: float, num_stages: int, where: str) -> Tuple[int, float]:
    """The official lod (0 = final resolution fully in) as (stage, fade-in alpha)."""
    if not 0.0 <= lod <= num_stages - 1:
        raise NotStyleGANError(f"{where} has lod {lod}, outside 0 .. {num_stages - 1}")
    whole = math.floor(lod)
    return num_stages - 1 - whole, 1.0 - (lod - whole)


def _is_fused(fused_scale, size: int) -> bool:
    """Whether a square layer of this size uses the fused form (official 'auto': >= 128)."""
    return size >= 128 if fused_scale == "auto" else bool(fused_scale)


def _synthesis_scope(spec) -> str:
    if spec.stage == 0:
        return f"{spec.height}x{spec.width}/{'Const' if spec.kind == 'const' else 'Conv'}"
    return f"{spec.height}x{spec.width}/{'Conv0_up' if spec.kind == 'up' else 'Conv1'}"


def _dense(v: _Variables, scope: str) -> Dict[str, np.ndarray]:
    """{kernel, bias} of a layer with a weight and a bias (dense or conv)."""
    return {"kernel": v.take(f"{scope}/weight"), "bias": v.take(f"{scope}/bias")}


def _generator(net: NetworkState, where: str):
    """(options, params, w_avg, lod, constant noise, info) of one G_style network."""
    _check_network(net, where, "G_style", (("mapping", "G_mapping"), ("synthesis", "G_synthesis")))
    mapping, synthesis = net.components["mapping"], net.components["synthesis"]
    _check_options(mapping, f"{where}'s mapping network", "G_mapping")
    _check_options(synthesis, f"{where}'s synthesis network", "G_synthesis")
    m = _Variables(mapping, f"{where}'s mapping network")
    s = _Variables(synthesis, f"{where}'s synthesis network")
    top = _Variables(net, where)

    lods = sorted(int(x.group(1)) for x in (re.fullmatch(r"ToRGB_lod(\d+)/weight", n)
                                            for n in s.names()) if x)
    if not lods or lods != list(range(len(lods))):
        raise NotStyleGANError(f"{s.where} has toRGB layers for lods {lods or 'none'}; StyleGAN v1 "
                               f"has ToRGB_lod0 .. ToRGB_lod<N>")
    num_stages = len(lods)
    resolution = stage_shape(BASE_SHAPE, num_stages - 1)[0]
    stated = synthesis.static_kwargs.get("resolution", resolution)
    if stated != resolution:
        raise NotStyleGANError(f"{s.where} says resolution {stated} but has toRGB layers up to "
                               f"{resolution}x{resolution}")
    # Stage st's layers have nf(st + 1) channels; its last conv is 4x4/Conv or {H}x{W}/Conv1.
    channels = {st + 1: s.shape(f"{h}x{w}/{'Conv' if st == 0 else 'Conv1'}/weight")[-1]
                for st, (h, w) in ((st, stage_shape(BASE_SHAPE, st)) for st in range(num_stages))}
    fmaps = fit_fmaps(channels, synthesis.static_kwargs, s.where)
    num_dense = sum(1 for n in m.names() if re.fullmatch(r"Dense\d+/weight", n))
    label_size = m.shape("LabelConcat/weight")[0] if "LabelConcat/weight" in m else 0
    latent_size = (m.shape("LabelConcat/weight")[1] if label_size else m.shape("Dense0/weight")[0])
    dlatent_size = m.shape(f"Dense{num_dense - 1}/weight")[1]
    options = dict(latent_size=latent_size, dlatent_size=dlatent_size, mapping_layers=num_dense,
                   mapping_fmaps=m.shape("Dense0/weight")[1] if num_dense > 1 else dlatent_size,
                   mapping_lr_mul=float(mapping.static_kwargs.get("mapping_lrmul", 0.01)),
                   num_channels=s.shape("ToRGB_lod0/weight")[-1],
                   use_noise="4x4/Const/Noise/weight" in s,
                   fused_scale=_fused_option(synthesis.static_kwargs, s.where), **fmaps)

    mapping_params = {}
    if label_size:
        mapping_params["label_embedding"] = m.take("LabelConcat/weight")
    for i in range(num_dense):
        mapping_params[f"dense{i}"] = _dense(m, f"Dense{i}")
    specs = synthesis_layers(BASE_SHAPE, num_stages, fmaps["fmap_base"], fmaps["fmap_decay"],
                             fmaps["fmap_max"])
    synthesis_params, noise = {}, {}
    for spec in specs:
        scope = _synthesis_scope(spec)
        layer = {}
        if spec.kind == "const":
            layer["const"] = s.take(f"{scope}/const").transpose(0, 2, 3, 1)  # NCHW -> NHWC
        else:
            kernel = s.take(f"{scope}/weight")
            if spec.kind == "up" and _is_fused(options["fused_scale"], spec.height):
                kernel = kernel[::-1, ::-1].copy()  # see the module docstring
            layer["conv"] = {"kernel": kernel}
        if options["use_noise"]:
            layer["noise"] = {"weight": s.take(f"{scope}/Noise/weight")}
        layer["bias"] = s.take(f"{scope}/bias")
        layer["style"] = {"dense": _dense(s, f"{scope}/StyleMod")}
        synthesis_params[spec.name] = layer
        if f"noise{spec.index}" in s:
            noise[spec.name] = s.take(f"noise{spec.index}").transpose(0, 2, 3, 1)
    for stage in range(num_stages):
        h, w = stage_shape(BASE_SHAPE, stage)
        synthesis_params[f"torgb_{h}x{w}"] = _dense(s, f"ToRGB_lod{num_stages - 1 - stage}")
    lod = float(top.take("lod")) if "lod" in top else 0.0
    if "lod" in s:
        s.take("lod")  # assigned from G's own lod at every run; G's is the one training set
    w_avg = top.take("dlatent_avg") if "dlatent_avg" in top else np.zeros([dlatent_size], np.float32)
    for v in (m, s, top):
        v.check_all_used()
    info = {"name": net.name, "truncation_psi": net.static_kwargs.get("truncation_psi", 0.7),
            "truncation_cutoff": net.static_kwargs.get("truncation_cutoff", 8),
            "static_kwargs": _jsonable(synthesis.static_kwargs)}
    params = {"mapping_network": mapping_params, "synthesis_network": synthesis_params}
    return options, params, w_avg, lod, label_size, noise, info


def _discriminator(net: NetworkState, num_stages: int, label_size: int, where: str = "D"):
    """(options, params, lod) of the D_basic network."""
    _check_network(net, where, "D_basic")
    _check_options(net, where, "D_basic")
    v = _Variables(net, where)
    lod_names = [f"FromRGB_lod{num_stages - 1 - s}/weight" for s in range(num_stages)]
    for name in lod_names:
        v.shape(name)  # names the first missing layer
    channels = {s + 1: v.shape(lod_names[s])[-1] for s in range(num_stages)}
    channels[0] = v.shape("4x4/Dense0/weight")[1]
    fmaps = fit_fmaps(channels, net.static_kwargs, where)
    group = int(net.static_kwargs.get("mbstd_group_size", 4))
    features = int(net.static_kwargs.get("mbstd_num_features", 1)) if group > 1 else 0
    conv_in = v.shape("4x4/Conv/weight")[2]
    if conv_in != channels[1] + features:
        raise NotStyleGANError(f"{where}'s 4x4/Conv takes {conv_in} channels, but with "
                               f"mbstd_num_features={features} it should take {channels[1] + features}")
    outputs = v.shape("4x4/Dense1/weight")[1]
    if outputs != max(label_size, 1):
        raise NotStyleGANError(f"{where} scores {outputs} outputs but G takes {label_size} labels")
    options = dict(fmap_base=fmaps["fmap_base"], fmap_decay=fmaps["fmap_decay"],
                   fmap_max=fmaps["fmap_max"], mbstd_group_size=group,
                   mbstd_num_features=max(features, 1),
                   fused_scale=_fused_option(net.static_kwargs, where), conditioning="switch")
    params = {}
    for stage in range(num_stages):
        h, w = stage_shape(BASE_SHAPE, stage)
        params[f"fromrgb_{h}x{w}"] = _dense(v, f"FromRGB_lod{num_stages - 1 - stage}")
        if stage > 0:
            params[f"{h}x{w}_conv0"] = _dense(v, f"{h}x{w}/Conv0")
            params[f"{h}x{w}_conv1_down"] = _dense(v, f"{h}x{w}/Conv1_down")
    params["4x4_conv"] = _dense(v, "4x4/Conv")
    dense0 = _dense(v, "4x4/Dense0")
    c = channels[1]  # the 4x4 conv's output channels, which Dense0 flattens
    # Official Dense0 flattens NCHW [C, 4, 4] (row c*16 + h*4 + w); here NHWC (row (h*4 + w)*C + c).
    dense0["kernel"] = dense0["kernel"].reshape(c, 4, 4, -1).transpose(1, 2, 0, 3).reshape(16 * c, -1)
    params["4x4_dense0"] = dense0
    params["4x4_dense1"] = _dense(v, "4x4/Dense1")
    lod = float(v.take("lod")) if "lod" in v else 0.0
    v.check_all_used()
    return options, params, lod


def _jsonable(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    out = {}
    for k, value in kwargs.items():
        if isinstance(value, (np.generic,)):
            value = value.item()
        if isinstance(value, (str, int, float, bool, type(None), list, tuple)):
            out[str(k)] = list(value) if isinstance(value, tuple) else value
        else:
            out[str(k)] = repr(value)
    return out


def _check_tree(params, module, init_args, stage: int, where: str) -> None:
    """Fails with a one-line error unless `params` has exactly the tree and shapes of `module`."""
    wanted = jax.eval_shape(lambda: module.init(*init_args, stage=stage))["params"]
    want = {k: tuple(x.shape) for k, x in flax.traverse_util.flatten_dict(wanted, sep="/").items()}
    have = {k: tuple(x.shape) for k, x in flax.traverse_util.flatten_dict(params, sep="/").items()}
    for name in sorted(set(want) | set(have)):
        if want.get(name) != have.get(name):
            raise NotStyleGANError(f"{where}: parameter {name} is {have.get(name, 'absent')} from "
                                   f"the pickle, the network here needs {want.get(name, 'absent')}")


def convert(networks: Tuple[NetworkState, ...], where: str = "the pickle") -> ImportedStyleGAN:
    """The (G, D, Gs) of a StyleGAN v1 training snapshot as this project's parameters."""
    if len(networks) != 3:
        names = ", ".join(f"{n.name} ({n.build_func_name})" for n in networks)
        raise NotStyleGANError(f"{where} holds {len(networks)} network(s) ({names}); a StyleGAN "
                               f"v1 snapshot holds three, (G, D, Gs)")
    G_net, D_net, Gs_net = networks
    options, g_params, _, _, label_size, _, _ = _generator(G_net, f"{where}'s G")
    gs_options, gs_params, w_avg, lod, gs_labels, noise, info = _generator(Gs_net, f"{where}'s Gs")
    if (gs_options, gs_labels) != (options, label_size):
        raise NotStyleGANError(f"{where}'s G and Gs differ in architecture ({options} vs "
                               f"{gs_options})")
    num_stages = len([k for k in gs_params["synthesis_network"] if k.startswith("torgb_")])
    d_options, d_params, _ = _discriminator(D_net, num_stages, label_size, f"{where}'s D")
    stage, alpha = _stage_and_alpha(lod, num_stages, f"{where}'s Gs")
    imported = ImportedStyleGAN(
        generator_options=options, discriminator_options=d_options, num_stages=num_stages,
        label_size=label_size, g_params=g_params, d_params=d_params, g_ema_params=gs_params,
        w_avg=np.asarray(w_avg, np.float32), stage=stage, alpha=alpha, constant_noise=noise,
        info=dict(info, lod=lod, build_functions={"G": G_net.build_func_name,
                                                  "D": D_net.build_func_name,
                                                  "Gs": Gs_net.build_func_name}))
    G, D = imported.networks()
    top = num_stages - 1
    labels = jnp.zeros((1, label_size), jnp.float32) if label_size else None
    z = jnp.zeros((1, G.latent_size), jnp.float32)
    keys = {"params": jax.random.key(0), "noise": jax.random.key(1)}
    images = jnp.zeros((1, *stage_shape(BASE_SHAPE, top), G.num_channels), jnp.float32)
    for name, params in (("G", g_params), ("Gs", gs_params)):
        _check_tree(params, G, (keys, z, labels), top, f"{where}'s {name}")
    _check_tree(d_params, D, ({"params": jax.random.key(0)}, images, labels), top, f"{where}'s D")
    return imported


def load(path: str) -> ImportedStyleGAN:
    """A StyleGAN v1 pickle (read with tf_pickle's restricted unpickler) as parameters here."""
    return convert(tf_pickle.load(path), path)
