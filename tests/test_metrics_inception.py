"""FID Inception: a state dict built from torchvision's layer list (written out here independently)
loads with the right names and shapes, bad files fail clearly, and the forward pass gives [N, 2048]."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from stylegan_jax.atomic import write_npz_atomically
from stylegan_jax.metrics import convert_fid_weights, inception

# (name, in_channels, out_channels, kernel_h, kernel_w) for every BasicConv2d of torchvision's Inception3
STEM = [("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3), ("Conv2d_2b_3x3", 32, 64, 3, 3),
        ("Conv2d_3b_1x1", 64, 80, 1, 1), ("Conv2d_4a_3x3", 80, 192, 3, 3)]


def block_a(cin, pool):
    return [("branch1x1", cin, 64, 1, 1), ("branch5x5_1", cin, 48, 1, 1), ("branch5x5_2", 48, 64, 5, 5),
            ("branch3x3dbl_1", cin, 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3), ("branch3x3dbl_3", 96, 96, 3, 3),
            ("branch_pool", cin, pool, 1, 1)]


def block_c(c7):
    return [("branch1x1", 768, 192, 1, 1), ("branch7x7_1", 768, c7, 1, 1), ("branch7x7_2", c7, c7, 1, 7),
            ("branch7x7_3", c7, 192, 7, 1), ("branch7x7dbl_1", 768, c7, 1, 1), ("branch7x7dbl_2", c7, c7, 7, 1),
            ("branch7x7dbl_3", c7, c7, 1, 7), ("branch7x7dbl_4", c7, c7, 7, 1), ("branch7x7dbl_5", c7, 192, 1, 7),
            ("branch_pool", 768, 192, 1, 1)]


def block_e(cin):
    return [("branch1x1", cin, 320, 1, 1), ("branch3x3_1", cin, 384, 1, 1), ("branch3x3_2a", 384, 384, 1, 3),
            ("branch3x3_2b", 384, 384, 3, 1), ("branch3x3dbl_1", cin, 448, 1, 1),
            ("branch3x3dbl_2", 448, 384, 3, 3), ("branch3x3dbl_3a", 384, 384, 1, 3),
            ("branch3x3dbl_3b", 384, 384, 3, 1), ("branch_pool", cin, 192, 1, 1)]


BLOCKS = {"Mixed_5b": block_a(192, 32), "Mixed_5c": block_a(256, 64), "Mixed_5d": block_a(288, 64),
          "Mixed_6a": [("branch3x3", 288, 384, 3, 3), ("branch3x3dbl_1", 288, 64, 1, 1),
                       ("branch3x3dbl_2", 64, 96, 3, 3), ("branch3x3dbl_3", 96, 96, 3, 3)],
          "Mixed_6b": block_c(128), "Mixed_6c": block_c(160), "Mixed_6d": block_c(160), "Mixed_6e": block_c(192),
          "Mixed_7a": [("branch3x3_1", 768, 192, 1, 1), ("branch3x3_2", 192, 320, 3, 3),
                       ("branch7x7x3_1", 768, 192, 1, 1), ("branch7x7x3_2", 192, 192, 1, 7),
                       ("branch7x7x3_3", 192, 192, 7, 1), ("branch7x7x3_4", 192, 192, 3, 3)],
          "Mixed_7b": block_e(1280), "Mixed_7c": block_e(2048)}
LAYERS = STEM + [(f"{block}.{name}", *rest) for block, layers in BLOCKS.items() for name, *rest in layers]


def random_state_dict(seed=0):
    """pytorch-fid layout: conv [out, in, kh, kw], BN weight/bias/running stats, plus ignored keys."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, cin, cout, kh, kw in LAYERS:
        state[f"{name}.conv.weight"] = (rng.standard_normal((cout, cin, kh, kw)) * np.sqrt(2 / (cin * kh * kw))
                                        ).astype(np.float32)
        state[f"{name}.bn.weight"] = rng.uniform(0.5, 1.5, cout).astype(np.float32)
        state[f"{name}.bn.bias"] = rng.uniform(-0.1, 0.1, cout).astype(np.float32)
        state[f"{name}.bn.running_mean"] = rng.uniform(-0.1, 0.1, cout).astype(np.float32)
        state[f"{name}.bn.running_var"] = rng.uniform(0.5, 1.5, cout).astype(np.float32)
        state[f"{name}.bn.num_batches_tracked"] = np.array(0, np.int64)
    state["fc.weight"] = np.zeros((1008, 2048), np.float32)
    state["fc.bias"] = np.zeros((1008,), np.float32)
    return state


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    state = random_state_dict()
    path = tmp_path_factory.mktemp("fid") / "fid_inception.npz"
    np.savez(path, **state)
    return state, str(path)


def test_layer_table_has_the_published_inception_v3_sizes():
    # Keras InceptionV3(include_top=False): 21,768,352 trainable (conv + BN beta) and 34,432 BN moving stats
    assert sum(cin * cout * kh * kw for _, cin, cout, kh, kw in LAYERS) == 21_768_352 - 34_432 // 2
    assert sum(cout for _, _, cout, _, _ in LAYERS) == 34_432 // 2


def test_loader_round_trips_names_and_layouts(weights):
    state, path = weights
    variables = inception.load_fid_inception(path)
    leaves = jax.tree_util.tree_flatten_with_path(variables)[0]
    assert len(leaves) == 5 * len(LAYERS)
    where = {("params", "kernel"): "weight", ("params", "scale"): "weight", ("params", "bias"): "bias",
             ("batch_stats", "mean"): "running_mean", ("batch_stats", "var"): "running_var"}
    for path_keys, value in leaves:
        keys = [entry.key for entry in path_keys]
        expected = state[".".join(keys[1:-2] + [keys[-2], where[(keys[0], keys[-1])]])]
        if expected.ndim == 4:
            expected = expected.transpose(2, 3, 1, 0)
        np.testing.assert_array_equal(np.asarray(value), expected)


def test_bad_weight_files_give_clear_errors(weights, tmp_path):
    state, _ = weights
    with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05.*convert_fid_weights"):
        inception.load_fid_inception(str(tmp_path / "missing.npz"))
    pth = tmp_path / "weights.pth"
    pth.write_bytes(b"x")
    with pytest.raises(ValueError, match="must be a .npz.*convert_fid_weights"):
        inception.load_fid_inception(str(pth))
    missing = dict(state)
    del missing["Mixed_6c.branch7x7_2.conv.weight"]
    with pytest.raises(ValueError, match="missing keys.*Mixed_6c.branch7x7_2.conv.weight"):
        inception.variables_from_state_dict(missing)
    wrong = dict(state, **{"Mixed_5b.branch_pool.conv.weight": np.zeros((64, 192, 1, 1), np.float32)})
    with pytest.raises(ValueError, match="'Mixed_5b.branch_pool.conv.weight' has shape"):
        inception.variables_from_state_dict(wrong)
    with pytest.raises(ValueError, match="does not use.*AuxLogits"):
        inception.variables_from_state_dict(dict(state, **{"AuxLogits.fc.weight": np.zeros(3)}))


def test_converter_needs_torch_only_when_used(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)     # import torch now fails like on this machine
    with pytest.raises(ImportError, match="pip install torch"):
        convert_fid_weights.read_torch_state_dict("x.pth")
    out = tmp_path / "out.npz"
    write_npz_atomically(str(out), {"a": np.arange(3)})
    np.testing.assert_array_equal(np.load(out)["a"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def test_converter_command_reports_bad_arguments_in_one_line(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def convert(*args):
        return subprocess.run([sys.executable, "-m", "stylegan_jax.metrics.convert_fid_weights", *args], cwd=repo,
                              env=dict(os.environ, PYTHONPATH=repo), capture_output=True, text=True, timeout=120,
                              check=False)
    wrong_name = convert(str(tmp_path / "w.pth"), str(tmp_path / "w.pkl"))
    assert wrong_name.returncode == 2
    assert wrong_name.stderr.strip().splitlines()[-1] == f"error: output must end in .npz, got '{tmp_path / 'w.pkl'}'"
    one_argument = convert(str(tmp_path / "w.pth"))
    assert one_argument.returncode == 1 and "give two arguments" in one_argument.stderr
    assert list(tmp_path.iterdir()) == []


def test_pooling_helpers_match_tensorflow_same_semantics():
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 2)).astype(np.float32)
    padded_sum = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    counts = np.pad(np.ones_like(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
    padded_max = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    window = lambda a: np.stack([a[:, i:i + 4, j:j + 5] for i in range(3) for j in range(3)])
    np.testing.assert_allclose(inception.avg_pool_3x3_same(x), window(padded_sum).sum(0) / window(counts).sum(0),
                               rtol=1e-6)
    np.testing.assert_allclose(inception.max_pool_3x3_same(x), window(padded_max).max(0))


@pytest.mark.slow
def test_forward_pass_on_random_weights_gives_2048_features(weights):
    _, path = weights
    variables = inception.load_fid_inception(path)
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 32, 3)).astype(np.uint8)
    features = inception.inception_features(variables, images, batch_size=2)   # last batch padded
    assert features.shape == (3, 2048) and np.isfinite(features).all()
    assert (features >= 0).all() and features.std(axis=0).mean() > 0          # post-ReLU means, image-dependent
    first_two = inception.inception_features(variables, images[:2], batch_size=2)
    np.testing.assert_allclose(features[:2], first_two, rtol=1e-5, atol=1e-6)
