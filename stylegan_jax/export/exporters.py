"""Writes the generator as an ONNX model or a TensorFlow SavedModel, with a JSON manifest beside it.

    manifest = export_onnx(G, ema_params, w_avg, ExportOptions(edit_layers=["16x8_conv1"]),
                           "generator.onnx")   # also writes generator.json

Both formats compute `generator_fn.make_export_function`; outputs are written atomically (temp
name in the same folder, then os.replace) and an existing output is only replaced on request.
"""
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Optional

import jax
import numpy as np

from stylegan_jax.atomic import write_bytes_atomically
from stylegan_jax.export import generator_fn
from stylegan_jax.export.generator_fn import ExportOptions
from stylegan_jax.networks import Generator, stage_shape
from stylegan_jax.utils import parameter_count

FORMATS = ("onnx", "savedmodel")


def parameter_bytes(params) -> int:
    """Bytes of `params` as float32 (what an exported model stores them as)."""
    return 4 * parameter_count(params)


def manifest_path(out_path: str) -> str:
    """Where the manifest of a model written to `out_path` goes: generator.onnx -> generator.json."""
    return os.path.splitext(out_path.rstrip("/"))[0] + ".json"


def build_manifest(G: Generator, params, options: ExportOptions, *, fmt: str, out_path: str,
                   source: Optional[str] = None, recipe: Optional[dict] = None) -> Dict[str, Any]:
    """Everything a runtime needs to drive the model: inputs, output, sizes and the recipe layers.

    recipe: an explorer recipe (JSON form) whose layers the edit inputs serve, kept for the game.
    """
    shapes = generator_fn.layer_shapes(G)
    return {
        "format": fmt,
        "model": os.path.basename(out_path.rstrip("/")),
        "source_checkpoint": source,
        "resolution": list(stage_shape(G.base_shape, G.num_stages - 1)),
        "latent_size": G.latent_size, "dlatent_size": G.dlatent_size,
        "num_layers": G.num_layers, "label_size": G.label_size,
        "input_kind": options.input_kind, "noise": options.noise,
        "truncation_cutoff": options.truncation_cutoff, "local_edits": options.local_edits,
        "inputs": generator_fn.input_specs(G, params, options),
        "outputs": [generator_fn.output_spec(G, options)],
        "edit_layers": list(options.edit_layers),
        # Every layer a recipe may target, with its [h, w, C] (re-export with --edit_layers).
        "layers": {name: list(shape) for name, shape in shapes.items()},
        "recipe": recipe,
    }


def _check_target(out_path: str, overwrite: bool) -> None:
    parent = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"output folder {parent} does not exist: create it first")
    if os.path.exists(out_path) and not overwrite:
        raise FileExistsError(f"{out_path} exists: pass overwrite=True (--overwrite) or choose "
                              f"another output path")


def _write_manifest(manifest: Dict[str, Any], out_path: str) -> None:
    write_bytes_atomically(manifest_path(out_path),
                            json.dumps(manifest, indent=1).encode("utf-8"))


def onnx_model(G: Generator, params, w_avg, options: ExportOptions, manifest=None):
    """The onnx.ModelProto of the generator (dynamic batch N); the manifest goes in its metadata."""
    from onnx import helper  # pylint: disable=import-outside-toplevel  (optional dependency)
    from stylegan_jax.export import onnx_graph  # pylint: disable=import-outside-toplevel
    specs = generator_fn.input_specs(G, params, options)
    fn = generator_fn.make_export_function(G, params, w_avg, options)
    batch = jax.export.symbolic_shape("N")[0]
    closed = jax.make_jaxpr(fn)(*generator_fn.abstract_inputs(specs, batch))
    model = onnx_graph.jaxpr_to_onnx(closed, [s["name"] for s in specs], ["images"],
                                     graph_name="stylegan_generator",
                                     doc_string="StyleGAN generator exported by stylegan_jax")
    if manifest is not None:
        helper.set_model_props(model, {"manifest": json.dumps(manifest)})
    return model


def export_onnx(G: Generator, params, w_avg, options: ExportOptions, out_path: str, *,
                source: Optional[str] = None, overwrite: bool = False,
                recipe: Optional[dict] = None) -> Dict[str, Any]:
    """Writes `out_path` (.onnx) and its manifest; returns the manifest."""
    _check_target(out_path, overwrite)
    manifest = build_manifest(G, params, options, fmt="onnx", out_path=out_path, source=source,
                              recipe=recipe)
    model = onnx_model(G, params, w_avg, options, manifest)
    write_bytes_atomically(out_path, model.SerializeToString())
    _write_manifest(manifest, out_path)
    return manifest


def export_savedmodel(G: Generator, params, w_avg, options: ExportOptions, out_dir: str, *,
                      source: Optional[str] = None, overwrite: bool = False,
                      recipe: Optional[dict] = None, platforms=("cpu", "cuda")) -> Dict[str, Any]:
    """Writes a TensorFlow SavedModel (jax2tf, native serialization) to `out_dir` and its manifest.

    The signature "serving_default" takes the inputs by name and returns {"images": ...}.
    `platforms`: the XLA platforms the serialized module is lowered for.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  (heavy import)
    from jax.experimental import jax2tf  # pylint: disable=import-outside-toplevel
    _check_target(out_dir, overwrite)
    manifest = build_manifest(G, params, options, fmt="savedmodel", out_path=out_dir,
                              source=source, recipe=recipe)
    specs = manifest["inputs"]
    fn = generator_fn.make_export_function(G, params, w_avg, options)
    converted = jax2tf.convert(fn, polymorphic_shapes=["(N, ...)"] * len(specs),
                               with_gradient=False, native_serialization_platforms=platforms)
    signature = [tf.TensorSpec([None if d == "N" else d for d in s["shape"]], tf.float32,
                               name=s["name"]) for s in specs]
    module = tf.Module()

    @tf.function(input_signature=signature, autograph=False)
    def serve(*inputs):
        return {"images": converted(*inputs)}

    module.serve = serve
    parent = os.path.dirname(os.path.abspath(out_dir))
    temp = tempfile.mkdtemp(prefix=".savedmodel-", dir=parent)
    try:
        tf.saved_model.save(module, temp, signatures={"serving_default": serve})
        if os.path.exists(out_dir):  # overwrite=True: swap the old one out, then delete it
            old = tempfile.mkdtemp(prefix=".old-savedmodel-", dir=parent)
            os.replace(out_dir, os.path.join(old, "model"))
            os.replace(temp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(temp, out_dir)
    finally:
        if os.path.exists(temp):
            shutil.rmtree(temp)
    _write_manifest(manifest, out_dir)
    return manifest


def export(fmt: str, G: Generator, params, w_avg, options: ExportOptions, out_path: str,
           **kwargs) -> Dict[str, Any]:
    """export_onnx or export_savedmodel by name; a one-line error for an unknown format."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}': choose one of {', '.join(FORMATS)}")
    exporter = export_onnx if fmt == "onnx" else export_savedmodel
    return exporter(G, params, np.asarray(w_avg), options, out_path, **kwargs)
