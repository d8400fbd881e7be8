"""The exported ONNX model, run by onnxruntime, computes the JAX generator.

The reference (helpers.reference_fn) is the JAX generator vmapped over examples (mapping, the
library's truncate() with a scalar psi per example, synthesis with const noise, edits through
explore.synthesis_hooks as the explorer renders them, clip), not the export function or its ONNX
converter.
"""
import collections
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from stylegan_jax.explore.model import DEMO_GENERATOR, load_generator
from stylegan_jax.export import ExportOptions, export_onnx, manifest_path, parameter_bytes
from stylegan_jax.export import onnx_graph
from helpers import EDITS, TOLERANCE, check_against_reference, make_inputs, onnx_runner, tiny_generator


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny generator exported with two edit inputs: (model, options, path, manifest)."""
    model = tiny_generator()
    options = ExportOptions(edit_layers=EDITS)
    path = str(tmp_path_factory.mktemp("onnx") / "g.onnx")
    manifest = export_onnx(*model, options, path, source="ckpt")
    return model, options, path, manifest


@pytest.mark.slow
def test_onnx_matches_jax_for_seeds_psi_and_edits(exported):
    model, options, path, manifest = exported
    run = onnx_runner(path)
    plain = make_inputs(manifest["inputs"], 3, seed=1, edit_scale=0.0)  # zero offsets = no edit
    unedited = check_against_reference(run, model, options, manifest, plain)
    edited = check_against_reference(run, model, options, manifest,
                                     make_inputs(manifest["inputs"], 3, seed=1))
    assert np.abs(edited - unedited).max() > 0.05  # the edit really changes the picture
    other = make_inputs(manifest["inputs"], 3, seed=2)
    images = check_against_reference(run, model, options, manifest, other)
    single = run({k: v[1:2] for k, v in other.items()})  # batch 1: the batch dim is dynamic
    np.testing.assert_allclose(single, images[1:2], atol=TOLERANCE, rtol=0)


@pytest.mark.slow
def test_onnx_fused_upsampling_matches_jax(tmp_path):
    # fused_scale=True turns the upsampling convs into transposed (input-dilated) convolutions.
    model = tiny_generator(fused=True)
    options = ExportOptions(edit_layers=EDITS[:1])
    manifest = export_onnx(*model, options, str(tmp_path / "g.onnx"))
    check_against_reference(onnx_runner(str(tmp_path / "g.onnx")), model, options, manifest,
                            make_inputs(manifest["inputs"], 3, seed=3))


@pytest.mark.slow
@pytest.mark.parametrize("options", [ExportOptions(layout="nhwc", edit_layers=("8x4_conv",)),
                                     ExportOptions(input_kind="w", noise="none",
                                                   truncation_cutoff=None, edit_layers=("16x8_conv1",),
                                                   local_edits=False)],
                         ids=["z_labels_nhwc", "w_no_noise_own_stats"])
def test_onnx_conditional_and_w_input(tmp_path, options):
    model = tiny_generator(label_size=3)
    path = str(tmp_path / "g.onnx")
    manifest = export_onnx(*model, options, path)
    names = [s["name"] for s in manifest["inputs"]]
    assert ("labels" in names) == (options.input_kind == "z")
    check_against_reference(onnx_runner(path), model, options, manifest,
                            make_inputs(manifest["inputs"], 3, seed=5))


def test_manifest_describes_the_onnx_graph(exported):
    _, _, path, manifest = exported
    with open(manifest_path(path), encoding="utf-8") as f:
        assert json.load(f) == manifest
    model = onnx.load(path)
    graph_inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
                    for i in model.graph.input}
    assert graph_inputs == {s["name"]: s["shape"] for s in manifest["inputs"]}
    assert list(graph_inputs) == ["z", "psi", "edit_16x8_conv1", "edit_32x16_conv0_up"]
    assert manifest["inputs"][2]["shape"] == ["N", 64 // 2**2, 16, 8]  # nf(2) = fmap_base / 4
    assert manifest["outputs"][0]["shape"] == ["N", 3, 32, 16]
    assert manifest["resolution"] == [32, 16] and manifest["source_checkpoint"] == "ckpt"
    assert json.loads(model.metadata_props[0].value) == manifest
    assert set(manifest["layers"]) >= set(EDITS) and model.opset_import[0].version == 15


def test_unknown_edit_layer_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"unknown edit layer\(s\) 64x32_conv1: .*8x4_const, 8x4_conv"):
        export_onnx(*tiny_generator(), ExportOptions(edit_layers=("64x32_conv1",)),
                    str(tmp_path / "g.onnx"))
    assert not list(tmp_path.iterdir())


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    path = tmp_path / "g.onnx"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_onnx(*tiny_generator(), ExportOptions(), str(path))
    assert path.read_bytes() == b"keep me"


def test_unsupported_primitive_names_itself():
    closed = jax.make_jaxpr(jnp.sort)(jax.ShapeDtypeStruct((4,), jnp.float32))
    with pytest.raises(NotImplementedError, match="'sort'"):
        onnx_graph.jaxpr_to_onnx(closed, ["x"], ["y"])


def _initializer_elements(model) -> int:
    return sum(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer)


def test_constant_broadcasts_that_would_grow_stay_in_the_graph():
    # noise [H, W, 1] * strength [C], as in every synthesis layer, and a broadcast bias: stored
    # folded they would be 2 * H*W*C numbers; kept apart, H*W + 2C (plus a few shape constants).
    rng = np.random.default_rng(0)
    h, w, c = 64, 32, 16
    noise = rng.standard_normal((h, w, 1)).astype(np.float32)
    strength, bias = rng.standard_normal((2, c)).astype(np.float32)

    def fn(x):
        return (x + jnp.asarray(noise) * jnp.asarray(strength)
                + jnp.broadcast_to(jnp.asarray(bias), (h, w, c))
                # a broadcast, scaled, that an op with no ONNX mapping (cumsum) consumes: the
                # scaling stays a pending broadcast, expanded when cumsum is folded
                + jnp.cumsum(jnp.broadcast_to(jnp.asarray(bias), (h, w, c)) * 2.0, axis=0))

    closed = jax.make_jaxpr(fn)(jax.ShapeDtypeStruct((2, h, w, c), jnp.float32))
    model = onnx_graph.jaxpr_to_onnx(closed, ["x"], ["y"])
    sizes = sorted(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer)
    assert sizes[-1] == h * w * c  # the cumsum result, the only full-size constant
    assert sum(sizes[:-1]) <= h * w + 2 * c + 64, sizes
    x = rng.standard_normal((2, h, w, c)).astype(np.float32)
    expected = (x + noise * strength + bias
                + np.cumsum(np.broadcast_to(bias * 2.0, (h, w, c)), axis=0))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["y"], {"x": x})[0], expected, rtol=1e-5, atol=1e-4)


# Local edits run synthesis twice (statistics pass, edited pass) on the same weights.
DEMO_EXPORTS = {"const": ExportOptions(), "none": ExportOptions(noise="none"),
                "local_edits": ExportOptions(edit_layers=("16x8_conv1",))}


@pytest.fixture(scope="module")
def demo_exports(tmp_path_factory):
    """The bundled demo generator exported with DEMO_EXPORTS: (bundle, {name: path})."""
    bundle = load_generator(DEMO_GENERATOR)
    folder = tmp_path_factory.mktemp("demo")
    paths = {}
    for name, options in DEMO_EXPORTS.items():
        paths[name] = str(folder / f"{name}.onnx")
        export_onnx(bundle.module, bundle.params, bundle.w_avg, options, paths[name])
    return bundle, paths


@pytest.mark.parametrize("name", list(DEMO_EXPORTS))
def test_demo_export_is_about_its_parameter_bytes(demo_exports, name):
    bundle, paths = demo_exports
    size = os.path.getsize(paths[name])
    params = parameter_bytes(bundle.params)
    assert params > 250_000  # the demo generator: ~77k float32 parameters
    assert size <= 1.3 * params, f"{size} bytes for {params} parameter bytes"


def test_demo_export_without_noise_has_no_noise_ops(demo_exports):
    # Noise "const" adds noise * strength in every synthesis layer (one Mul and one Add each);
    # noise "none" leaves both out rather than adding zeros.
    bundle, paths = demo_exports
    counts = {name: collections.Counter(n.op_type for n in onnx.load(paths[name]).graph.node)
              for name in ("const", "none")}
    assert counts["const"] - counts["none"] == collections.Counter(
        {"Mul": bundle.module.num_layers, "Add": bundle.module.num_layers})


def test_export_function_traces_plain_convolutions_whatever_the_default():
    # Training on CPU lowers wide convolutions to Winograd's transforms and matrix products
    # (layers.conv2d); the exported graph must keep one Conv per convolution, even where the
    # default is Winograd.
    from stylegan_jax import layers
    from stylegan_jax.explore.synthesis_hooks import synthesize
    from stylegan_jax.export import generator_fn
    G, params, w_avg = tiny_generator()
    options = ExportOptions()
    fn = generator_fn.make_export_function(G, params, w_avg, options)
    args = generator_fn.abstract_inputs(generator_fn.input_specs(G, params, options), 1)
    w = jax.ShapeDtypeStruct((1, G.num_layers, G.dlatent_size), jnp.float32)
    with layers.conv_impl_scope("winograd"):
        exported = str(jax.make_jaxpr(fn)(*args))
        plain = str(jax.make_jaxpr(lambda w: synthesize(G, params, w, noise_mode="const").images)(w))
    # The scope reaches the network's 3x3 convolutions (only the 1x1 toRGB keeps lax.conv)...
    assert plain.count("conv_general_dilated") <= 1
    assert exported.count("conv_general_dilated") >= G.num_layers - 1  # ...but not the export
