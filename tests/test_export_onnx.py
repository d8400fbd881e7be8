"""The exported ONNX model, run by onnxruntime, computes the JAX generator.

The reference is built directly from networks.py (mapping, the library's truncate() with a scalar
psi per example, synthesis with const noise and edits, clip), not from the export code. The
helpers here are shared with test_export_savedmodel.py and test_export_cli.py.
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

from stylegan_jax.explore.model import load_generator
from stylegan_jax.explore.synthesis_hooks import synthesize
from stylegan_jax.export import ExportOptions, export_onnx, manifest_path, parameter_bytes
from stylegan_jax.export import onnx_graph
from stylegan_jax.networks import Generator, truncate
from stylegan_jax.utils import cpu_compiler_options

TOLERANCE = 1e-3
EDITS = ("16x8_conv1", "32x16_conv0_up")
TINY = dict(base_shape=(8, 4), num_stages=3, latent_size=16, dlatent_size=16, mapping_layers=2,
            mapping_fmaps=16, fmap_base=64, fmap_max=32)  # 8x4 -> 32x16, 16-32 channels
_CACHE = {}


def tiny_generator(label_size=0, fused=False, seed=0):
    """(G, params, w_avg): random parameters of the right shapes (shape-only init, no compile).

    Stored weights are N(0, 1), as equalized LR keeps them (the mapping's N(0, 1/lr_mul)); noise
    weights are non-zero so that the fixed noise shows in the images.
    """
    key = ("G", label_size, fused, seed)
    if key not in _CACHE:
        G = Generator.create(**TINY, label_size=label_size, fused_scale=fused)
        labels = jnp.zeros((1, label_size)) if label_size else None
        shapes = jax.eval_shape(lambda: G.init({"params": jax.random.key(0), "noise": jax.random.key(1)},
                                               jnp.zeros((1, 16)), labels, stage=2)["params"])
        leaves, tree = jax.tree.flatten_with_path(shapes)
        rng = np.random.default_rng(seed)
        params = []
        for path, leaf in leaves:
            scale = 1.0 / G.mapping_network.mapping_lr_mul if "mapping_network" in str(path) else 1.0
            if "bias" in str(path) or "weight" in str(path):  # biases, noise strengths
                scale = 0.2
            params.append(jnp.asarray(rng.standard_normal(leaf.shape) * scale, jnp.float32))
        w_avg = rng.standard_normal(G.dlatent_size).astype(np.float32) * 0.5
        _CACHE[key] = (G, jax.tree.unflatten(tree, params), w_avg)
    return _CACHE[key]


def reference_fn(G, params, w_avg, options: ExportOptions):
    """The JAX generator, vmapped over examples so each example gets a scalar psi (as
    networks.truncate takes it); jitted once per model and options."""
    key = ("ref", id(params), G, options)
    if key in _CACHE:
        return _CACHE[key]

    def one(latent, psi, labels, edits):  # one example, with a batch axis of 1
        v = {"params": params}
        w = latent if options.input_kind == "w" else G.apply(v, latent, labels,
                                                             method=Generator.mapping)
        w = truncate(w, jnp.asarray(w_avg), psi, options.truncation_cutoff)
        if options.layout == "nchw":
            edits = {k: jnp.transpose(d, (0, 2, 3, 1)) for k, d in edits.items()}
        stats = None
        if edits and options.local_edits:  # the unedited pass's instance-norm statistics
            stats = synthesize(G, params, w, noise_mode=options.noise).norm_stats
        x = synthesize(G, params, w, noise_mode=options.noise, edits=edits, norm_stats=stats).images
        x = jnp.clip(x, -1.0, 1.0)
        return jnp.transpose(x, (0, 3, 1, 2)) if options.layout == "nchw" else x

    def batch(latent, psi, labels, edits):
        add_axis = lambda a: None if a is None else a[:, None]  # noqa: E731
        out = jax.vmap(one)(add_axis(latent), psi, add_axis(labels),
                            {k: d[:, None] for k, d in edits.items()})
        return out[:, 0]

    _CACHE[key] = jax.jit(batch, compiler_options=cpu_compiler_options(True))
    return _CACHE[key]


def make_inputs(specs, n, seed, edit_scale=0.5):
    """Random inputs for the manifest's input specs; psi spans [0.4, 1]."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = [n if d == "N" else d for d in spec["shape"]]
        if spec["name"] == "psi":
            feeds["psi"] = np.linspace(0.4, 1.0, n).astype(np.float32)
        elif spec["name"] == "labels":
            feeds["labels"] = np.eye(shape[1], dtype=np.float32)[rng.integers(0, shape[1], n)]
        else:
            scale = edit_scale if spec["name"].startswith("edit_") else 1.0
            feeds[spec["name"]] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return feeds


def check_against_reference(run, model, options, manifest, feeds):
    """run(feeds) matches the reference; returns the images."""
    G, params, w_avg = model
    edits = {name: feeds[f"edit_{name}"] for name in options.edit_layers}
    expected = np.asarray(reference_fn(G, params, w_avg, options)(
        feeds[options.input_kind], feeds["psi"], feeds.get("labels"), edits))
    got = run(feeds)
    n = len(feeds["psi"])
    assert got.shape == expected.shape == (n, *manifest["outputs"][0]["shape"][1:])
    assert got.min() >= -1.0 and got.max() <= 1.0
    inside = np.mean(np.abs(expected) < 0.99)
    assert inside > 0.2, f"images saturated ({inside:.0%} unclipped): the check would be weak"
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    return got


def onnx_runner(path):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(["images"], feeds)[0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny generator exported with two edit inputs: (model, options, path, manifest)."""
    model = tiny_generator()
    options = ExportOptions(edit_layers=EDITS)
    path = str(tmp_path_factory.mktemp("onnx") / "g.onnx")
    manifest = export_onnx(*model, options, path, source="ckpt")
    return model, options, path, manifest


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


def test_onnx_fused_upsampling_matches_jax(tmp_path):
    # fused_scale=True turns the upsampling convs into transposed (input-dilated) convolutions.
    model = tiny_generator(fused=True)
    options = ExportOptions(edit_layers=EDITS[:1])
    manifest = export_onnx(*model, options, str(tmp_path / "g.onnx"))
    check_against_reference(onnx_runner(str(tmp_path / "g.onnx")), model, options, manifest,
                            make_inputs(manifest["inputs"], 3, seed=3))


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
    bundle = load_generator("stylegan_jax/assets/demo_generator.npz")
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
