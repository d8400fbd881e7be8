"""The function that gets exported: the EMA generator at its final resolution, with its inputs.

Inputs, in this order (names are those of the ONNX graph and the SavedModel signature):
  z      float32 [N, latent_size]            (or w float32 [N, num_layers, dlatent_size] with
                                              input_kind="w", e.g. a latent from the explorer)
  psi    float32 [N]                         truncation psi per example (1 = none); layers below
                                              truncation_cutoff lerp toward w_avg (StyleGAN sec. 3)
  labels float32 [N, label_size]             conditional models only, input_kind="z" only
  edit_<layer> float32 [N, C, h, w]          one per edit layer, added to that layer's output
                                              ([N, h, w, C] with layout="nhwc"); zeros = no edit.
                                              With local_edits (the default), edited images keep
                                              the unedited image's instance-norm statistics, as
                                              the explorer renders them (one more synthesis pass)
Output:
  images float32 [N, C, H, W] (or [N, H, W, C]), clipped to [-1, 1].

Noise is fixed ('const', the network's per-layer constant noise, identical in every runtime) or
off ('none', exported without the noise adds): random-number ops are seeded differently by every runtime, so an exported model
with them could not match the JAX generator.
"""
import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp

from stylegan_jax.explore.synthesis_hooks import synthesize
from stylegan_jax.layers import conv_impl_scope
from stylegan_jax.networks import Generator, layer_names, stage_shape, truncate

NOISE_MODES = ("const", "none")
LAYOUTS = ("nchw", "nhwc")
INPUT_KINDS = ("z", "w")


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What the exported model takes and returns."""
    input_kind: str = "z"                     # "z" (latent) or "w" (per-layer dlatents)
    edit_layers: Sequence[str] = ()           # synthesis layers that get an edit-offset input
    noise: str = "const"                      # "const" (fixed per layer) or "none"
    layout: str = "nchw"                      # image / edit layout: "nchw" (engines) or "nhwc"
    truncation_cutoff: Optional[int] = 8      # psi applies to layers below this (None = all)
    local_edits: bool = True                  # edits keep the unedited instance-norm statistics


def check_options(G: Generator, options: ExportOptions) -> None:
    """Raises a one-line ValueError naming the fix for any option the model cannot export."""
    for field, value, valid in (("input_kind", options.input_kind, INPUT_KINDS),
                                ("noise", options.noise, NOISE_MODES),
                                ("layout", options.layout, LAYOUTS)):
        if value not in valid:
            raise ValueError(f"unknown {field} '{value}': choose one of {', '.join(valid)}")
    names = layer_names(G.base_shape, G.num_stages)
    unknown = [name for name in options.edit_layers if name not in names]
    if unknown:
        raise ValueError(f"unknown edit layer(s) {', '.join(unknown)}: this model's layers are "
                         f"{', '.join(names)}")
    if len(set(options.edit_layers)) != len(options.edit_layers):
        raise ValueError(f"edit layers {list(options.edit_layers)} name a layer twice: give each once")


def layer_shapes(G: Generator) -> Dict[str, tuple]:
    """{layer name: (h, w, C)} of every synthesis layer at the final resolution."""
    return {layer.name: (layer.height, layer.width, layer.channels) for layer in G.layer_specs}


def _to_layout(hwc: tuple, layout: str) -> tuple:
    return (hwc[2], hwc[0], hwc[1]) if layout == "nchw" else tuple(hwc)


def input_specs(G: Generator, params, options: ExportOptions) -> List[Dict[str, Any]]:
    """[{name, shape (batch = "N"), dtype, description}] of the exported model's inputs, in order."""
    check_options(G, options)
    if options.input_kind == "z":
        specs = [dict(name="z", shape=["N", G.latent_size], description="latent, N(0, 1)")]
    else:
        specs = [dict(name="w", shape=["N", G.num_layers, G.dlatent_size],
                      description="per-layer dlatents (mapping output)")]
    specs.append(dict(name="psi", shape=["N"], description="truncation psi per example; 1 = off"))
    if G.label_size and options.input_kind == "z":
        specs.append(dict(name="labels", shape=["N", G.label_size],
                          description="label vector of the conditional model"))
    shapes = layer_shapes(G)
    for name in options.edit_layers:
        specs.append(dict(name=f"edit_{name}", shape=["N", *_to_layout(shapes[name], options.layout)],
                          description=f"offset added to the output of layer {name}; zeros = none"))
    for spec in specs:
        spec["dtype"] = "float32"
    return specs


def output_spec(G: Generator, options: ExportOptions) -> Dict[str, Any]:
    """Name, shape, layout and value range of the exported model's output."""
    h, w = stage_shape(G.base_shape, G.num_stages - 1)
    return dict(name="images", shape=["N", *_to_layout((h, w, G.num_channels), options.layout)],
                dtype="float32", layout=options.layout.upper(), range=[-1.0, 1.0])


def make_export_function(G: Generator, params, w_avg, options: ExportOptions) -> Callable:
    """fn(*inputs) -> images: the pure function to export, inputs as in `input_specs`.

    params: the generator's parameters (the EMA copy); w_avg: float32 [dlatent] for truncation.
    Params and w_avg are closed over, so they become constants of the exported graph.
    """
    check_options(G, options)
    # Runtimes run float32 everywhere (bfloat16 mixed precision is a training-speed setting).
    # Noise "none" would add zero noise times each layer's strength: without noise layers the
    # graph has no such adds (the strengths in params then go unused).
    G = G.replace(dtype=jnp.float32,
                  use_noise=G.synthesis_network.use_noise and options.noise != "none")
    variables = {"params": params}
    w_avg = jnp.asarray(w_avg, jnp.float32)
    has_labels = bool(G.label_size) and options.input_kind == "z"
    cutoff = G.num_layers if options.truncation_cutoff is None else options.truncation_cutoff
    nchw = options.layout == "nchw"

    def fn(*inputs):
        latent, psi, rest = inputs[0], inputs[1], list(inputs[2:])
        labels = rest.pop(0) if has_labels else None
        if options.input_kind == "z":
            w = G.apply(variables, latent, labels, method=Generator.mapping)
        else:
            w = latent
        # Per-example psi: truncate() takes one psi per layer, so lerp all layers with each
        # example's psi and keep the result in the layers below the cutoff.
        truncated = truncate(w, w_avg, psi[:, None, None])
        w = jnp.where((jnp.arange(G.num_layers) < cutoff)[None, :, None], truncated, w)
        edits = {name: (jnp.transpose(delta, (0, 2, 3, 1)) if nchw else delta)
                 for name, delta in zip(options.edit_layers, rest)}
        norm_stats = None
        if edits and options.local_edits:  # the explorer's local edits (explore/explorer.py)
            norm_stats = synthesize(G, params, w, noise_mode=options.noise).norm_stats
        images = synthesize(G, params, w, noise_mode=options.noise, edits=edits,
                            norm_stats=norm_stats).images
        images = jnp.clip(images, -1.0, 1.0)
        return jnp.transpose(images, (0, 3, 1, 2)) if nchw else images

    def exported(*inputs):
        # Engines expect one Conv node per convolution: traced with lax.conv whatever the backend
        # (on CPU, training lowers wide convolutions to matrix products, see layers.conv2d).
        with conv_impl_scope("lax"):
            return fn(*inputs)

    return exported


def abstract_inputs(specs: List[Dict[str, Any]], batch) -> List[jax.ShapeDtypeStruct]:
    """ShapeDtypeStructs of the inputs with "N" replaced by `batch` (an int or a symbolic dim)."""
    return [jax.ShapeDtypeStruct(tuple(batch if d == "N" else d for d in s["shape"]), jnp.float32)
            for s in specs]
