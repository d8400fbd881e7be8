"""Importing NVIDIA StyleGAN v1 pickles (stylegan_jax.pretrained, experiments.import_stylegan).

The pickles are written here in NVIDIA's exact format (tests/stylegan_v1_pickles.py: a stub class
under dnnlib.tflib.network, official variable names, shapes and layouts); the imported networks
are checked against planted weights and against a NumPy re-statement of the official forward
passes (networks_stylegan.py), fused up/downsampling and fade-in included.
"""
import math
import os
import pickle
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stylegan_v1_pickles as official
from stylegan_jax import layers
from stylegan_jax.pretrained import stylegan_v1, tf_pickle

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(tmp_path, arch=official.SMALL, seed=0, lod=0.0, name="snapshot.pkl", edit=None,
          g_kwargs=None, d_kwargs=None, **write_kwargs):
    """A snapshot pickle; edit(variables) may change the official variables first."""
    variables = official.snapshot_variables(arch, seed=seed, lod=lod)
    if edit is not None:
        edit(variables)
    nets = official.snapshot_networks(arch, variables, g_kwargs, d_kwargs)
    return official.write_snapshot(str(tmp_path / name), nets, **write_kwargs), variables


def project_noise(G):
    """The generator's const-mode noise maps as official noise{i} variables (NCHW)."""
    return {f"noise{s.index}": np.asarray(jax.random.normal(
        jax.random.key(1000 + s.index), (1, s.height, s.width, 1))).transpose(0, 3, 1, 2)
        for s in G.layer_specs}


@pytest.mark.parametrize("fused,lod,label_size", [("auto", 0.0, 0), (True, 0.0, 0),
                                                  ("auto", 0.5, 0), (True, 0.0, 3)])
def test_imported_networks_match_the_official_forward_pass(tmp_path, fused, lod, label_size):
    arch = dict(official.SMALL, label_size=label_size)
    num_layers = 2 * int(math.log2(arch["resolution"])) - 2

    def const_noise(v):  # the pickle's fixed noise = this project's const noise
        shapes = [(1, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2)) for i in range(num_layers)]
        for i, shape in enumerate(shapes):
            v["G_synthesis"][f"noise{i}"] = np.asarray(jax.random.normal(
                jax.random.key(1000 + i), (1, shape[2], shape[3], 1))).transpose(0, 3, 1, 2)

    path, v = write(tmp_path, arch, seed=3, lod=lod, edit=const_noise,
                    g_kwargs=dict(fused_scale=fused), d_kwargs=dict(fused_scale=fused))
    imported = stylegan_v1.load(path)
    G, D = imported.networks()
    assert (imported.stage, imported.alpha) == (2, 1.0 - lod)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, arch["latent_size"])).astype(np.float32)
    labels = np.eye(label_size, dtype=np.float32)[[0, 1, 2, 1]] if label_size else None
    params = {"params": imported.g_ema_params}
    w = G.apply(params, jnp.asarray(z), None if labels is None else jnp.asarray(labels),
                method=G.mapping)
    w_ref = official.reference_mapping(v["G_mapping"], z, labels, arch["mapping_layers"])
    np.testing.assert_allclose(np.asarray(w[:, 0]), w_ref, rtol=1e-4, atol=1e-4)
    images = G.apply(params, w, stage=imported.stage, alpha=imported.alpha, noise_mode="const",
                     method=G.synthesis)
    ref = official.reference_synthesis(v["G_synthesis"], np.asarray(w, np.float64),
                                       arch["resolution"], lod=lod, fused=fused)
    assert np.abs(ref).max() > 1.0  # a real signal, not zeros
    np.testing.assert_allclose(np.asarray(images).transpose(0, 3, 1, 2), ref, atol=1e-4 * np.abs(ref).max())
    reals = rng.standard_normal((4, 3, 16, 16))
    scores = D.apply({"params": imported.d_params}, jnp.asarray(reals.transpose(0, 2, 3, 1), jnp.float32),
                     None if labels is None else jnp.asarray(labels), stage=2)
    np.testing.assert_allclose(np.asarray(scores), official.reference_discriminator(
        v["D"], reals, 16, fused=fused, labels=labels), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(imported.w_avg, v["G"]["dlatent_avg"])


def test_every_variable_is_used_exactly_once(tmp_path):
    ids = {}

    def fill(v):  # every official variable holds its own constant
        for net in ("G_mapping", "G_synthesis", "D"):
            for name in v[net]:
                if name != "lod":
                    ids[(net, name)] = len(ids) + 1
                    v[net][name] = np.full(np.shape(v[net][name]), len(ids), np.float32)

    path, _ = write(tmp_path, edit=fill)
    imported = stylegan_v1.load(path)

    def constants(tree):
        leaves = jax.tree.leaves(tree)
        for leaf in leaves:
            assert np.all(leaf == leaf.flat[0])
        return sorted(int(leaf.flat[0]) for leaf in leaves)

    g_ids = sorted(i for (net, name), i in ids.items() if net != "D" and not name.startswith("noise"))
    assert constants(imported.g_ema_params) == g_ids  # each trainable G variable, once
    assert constants(imported.d_params) == sorted(i for (net, _), i in ids.items() if net == "D")
    assert sorted(int(x.flat[0]) for x in imported.constant_noise.values()) == sorted(
        i for (net, name), i in ids.items() if name.startswith("noise"))


def test_layouts_follow_the_official_code(tmp_path):
    a = official.SMALL
    nf = lambda s: official.nf(s, a["fmap_base"], a["fmap_max"])  # noqa: E731

    def plant(v):
        s = v["G_synthesis"]
        s["8x8/Conv1/weight"][:] = 0
        s["8x8/Conv1/weight"][0, 2, 5, 7] = 1.0        # dy=0, dx=2: out[y, x] = in[y - 1, x + 1]
        v["G_mapping"]["Dense0/weight"][:] = 0
        v["G_mapping"]["Dense0/weight"][3, 20] = 1.0   # [in, out]: input 3 -> output 20
        for lod in range(3):
            s[f"ToRGB_lod{lod}/bias"][:] = 10.0 * lod
        s["4x4/Const/const"][:] = 0
        s["4x4/Const/const"][0, 6, 1, 2] = 1.0         # NCHW: channel 6 at (h=1, w=2)
        v["D"]["4x4/Dense0/weight"][:] = 0
        v["D"]["4x4/Dense0/weight"][9 * 16 + 2 * 4 + 3, 5] = 1.0  # NCHW flatten: c=9, h=2, w=3

    path, _ = write(tmp_path, edit=plant)
    imported = stylegan_v1.load(path)
    syn, dparams = imported.g_ema_params["synthesis_network"], imported.d_params
    # The conv kernel moves an impulse where the official [kh, kw, in, out] layout says.
    x = np.zeros((1, 8, 8, nf(2)), np.float32)
    x[0, 3, 3, 5] = 1.0
    y = np.asarray(layers.EqualizedConv(nf(2), 3, use_bias=False).apply(
        {"params": syn["8x8_conv1"]["conv"]}, jnp.asarray(x)))
    assert np.argwhere(np.abs(y) > 0).tolist() == [[0, 4, 2, 7]]
    # Dense [in, out]: unit 3 drives output 20 only.
    dense = np.asarray(layers.EqualizedDense(a["mapping_fmaps"], lr_mul=0.01).apply(
        {"params": imported.g_ema_params["mapping_network"]["dense0"]},
        jnp.asarray(np.eye(a["latent_size"], dtype=np.float32)[[3]])))
    bias = imported.g_ema_params["mapping_network"]["dense0"]["bias"] * 0.01
    assert np.argwhere(np.abs(dense[0] - bias) > 1e-6).ravel().tolist() == [20]
    # ToRGB_lod{L} is the toRGB of resolution 4 * 2**(num_stages - 1 - L).
    assert [float(syn[f"torgb_{r}x{r}"]["bias"][0]) for r in (16, 8, 4)] == [0.0, 10.0, 20.0]
    assert np.argwhere(syn["4x4_const"]["const"]).tolist() == [[0, 1, 2, 6]]
    assert np.argwhere(dparams["4x4_dense0"]["kernel"]).tolist() == [[(2 * 4 + 3) * nf(1) + 9, 5]]


@pytest.mark.slow
def test_ffhq_1024_layout_imports_with_the_official_parameter_counts(tmp_path):
    arch = official.FFHQ
    shapes = {"G_mapping": official.mapping_variables(arch),
              "G_synthesis": official.synthesis_variables(arch),
              "D": official.discriminator_variables(arch)}
    variables = {net: {k: np.zeros(s, np.float32) for k, s in v.items()} for net, v in shapes.items()}
    variables["G"] = {"lod": np.float32(0), "dlatent_avg": np.zeros(512, np.float32)}
    trainable = lambda v: sum(x.size for k, x in v.items() if k != "lod" and not k.startswith("noise"))  # noqa: E731
    assert trainable(variables["G_mapping"]) + trainable(variables["G_synthesis"]) == 26_219_627
    assert trainable(variables["D"]) == 23_087_249
    path = official.write_snapshot(str(tmp_path / "ffhq.pkl"),
                                   official.snapshot_networks(arch, variables))
    imported = stylegan_v1.load(path)
    count = lambda tree: sum(np.size(x) for x in jax.tree.leaves(tree))  # noqa: E731
    assert count(imported.g_ema_params) == count(imported.g_params) == 26_219_627
    assert count(imported.g_ema_params["mapping_network"]) == 2_101_248
    assert count(imported.d_params) == 23_087_249
    assert imported.num_stages == 9 and imported.generator_options["fmap_base"] == 8192
    assert len(imported.constant_noise) == 18


def test_pickles_written_before_numpy_2_with_protocol_2_load(tmp_path):
    path, v = write(tmp_path, protocol=2, old_numpy_names=True)
    with open(path, "rb") as f:
        data = f.read()
    assert b"cnumpy.core.multiarray\n_reconstruct" in data and b"_codecs" in data
    assert b"cdnnlib.tflib.network\nNetwork" in data
    imported = stylegan_v1.load(path)
    np.testing.assert_array_equal(imported.g_ema_params["mapping_network"]["dense1"]["kernel"],
                                  v["G_mapping"]["Dense1/weight"])


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.pkl"
    path.write_bytes(pickle.dumps((_Hostile(marker),)))
    with pytest.raises(tf_pickle.UnsafePickleError, match=r"references (posix|os)\.system"):
        tf_pickle.load(str(path))
    assert not marker.exists()


def stylegan2_networks():
    def net(name, func, components=None, variables=None):
        return official.network(name, func, {"resolution": 16}, variables or {}, components)
    g = lambda name: net(name, "G_main", {  # noqa: E731
        "mapping": net("G_mapping", "G_mapping"),
        "synthesis": net("G_synthesis", "G_synthesis_stylegan2",
                         variables={"4x4/Conv/mod_weight": np.zeros((4, 4), np.float32)})})
    return g("G"), net("D", "D_stylegan2"), g("Gs")


def test_a_stylegan2_pickle_is_named_in_a_one_line_error(tmp_path):
    path = official.write_snapshot(str(tmp_path / "sg2.pkl"), stylegan2_networks())
    with pytest.raises(stylegan_v1.NotStyleGANError) as error:
        stylegan_v1.load(path)
    assert "StyleGAN2" in str(error.value) and "G_main" in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_and_extra_variables_are_named(tmp_path):
    path, _ = write(tmp_path, name="missing.pkl",
                    edit=lambda v: v["G_synthesis"].pop("8x8/Conv1/StyleMod/bias"))
    with pytest.raises(stylegan_v1.NotStyleGANError, match="8x8/Conv1/StyleMod/bias"):
        stylegan_v1.load(path)
    path, _ = write(tmp_path, name="extra.pkl", edit=lambda v: v["D"].update(
        {"4x4/Extra/weight": np.zeros(3, np.float32)}))
    with pytest.raises(stylegan_v1.NotStyleGANError, match="4x4/Extra/weight"):
        stylegan_v1.load(path)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.import_stylegan", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=REPO))


@pytest.mark.slow
def test_cli_refuses_bad_pickles_in_one_line(tmp_path):
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(pickle.dumps((_Hostile(marker),)))
    sg2 = official.write_snapshot(str(tmp_path / "sg2.pkl"), stylegan2_networks())
    for pkl, expected in ((hostile, "system"), (sg2, "StyleGAN2")):
        result = run_cli(f"--pkl={pkl}", f"--out={tmp_path / 'out'}")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and lines[-1].startswith("error: ") and expected in lines[-1]
        assert "Traceback" not in result.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_imported_checkpoint_opens_in_every_tool(tmp_path):
    from PIL import Image
    from experiments.import_stylegan import import_pickle
    from stylegan_jax.explore import Explorer
    from stylegan_jax.explore.model import load_generator

    path, _ = write(tmp_path)
    out = tmp_path / "imported"
    record = import_pickle(path, str(out))
    imported = stylegan_v1.load(path)
    z = jnp.asarray(np.random.default_rng(0).standard_normal((2, 16)), jnp.float32)
    G, _ = imported.networks()
    expected = np.asarray(G.apply({"params": imported.g_ema_params}, z, stage=2, noise_mode="const"))
    for where in (str(out), str(out / "generator.npz"), record["checkpoint"]):
        bundle = load_generator(where)
        got = bundle.module.apply({"params": bundle.params}, z, stage=2, noise_mode="const")
        np.testing.assert_array_equal(np.asarray(got), expected)
        np.testing.assert_array_equal(bundle.w_avg, imported.w_avg)
        assert Explorer.open(where) is not None
    grid = tmp_path / "grid.png"
    result = subprocess.run([sys.executable, "-m", "experiments.sample", f"--workdir={out}",
                             f"--out={grid}", "--rows=2", "--cols=3", "--psi=0.7"], cwd=REPO,
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(grid).size == (3 * 16, 2 * 16)
