"""experiments/export.py: loads the EMA generator of a training checkpoint (workdir or step dir)
and exports it; clear one-line errors for a missing checkpoint and an unknown layer."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import export as export_cli
from stylegan_jax.export import ExportOptions
from helpers import check_against_reference, make_inputs, onnx_runner, write_smoke_workdir

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A training workdir (smoke config) with one checkpoint whose EMA weights differ from G's."""
    path = str(tmp_path_factory.mktemp("run"))
    rng = np.random.default_rng(0)

    def perturb(state):
        ema = jax.tree.map(lambda p: p + jnp.asarray(0.3 * rng.standard_normal(p.shape), p.dtype),
                           state.g_params)
        return state.replace(g_ema_params=ema,
                             w_avg=jnp.asarray(rng.standard_normal(16), jnp.float32))

    _, G, state = write_smoke_workdir(path, perturb)
    return path, (G, state.g_ema_params, np.asarray(state.w_avg))


def test_workdir_export_is_the_ema_generator(workdir, tmp_path):
    path, model = workdir
    out = str(tmp_path / "g.onnx")
    manifest = export_cli.run_export(path, None, "onnx", out, edit_layers=["16x8_conv1"])
    assert manifest["source_checkpoint"] == f"{os.path.abspath(path)} (step 0)"
    assert manifest["resolution"] == [16, 8] and manifest["edit_layers"] == ["16x8_conv1"]
    feeds = make_inputs(manifest["inputs"], 3, seed=0)
    images = check_against_reference(onnx_runner(out), model, ExportOptions(edit_layers=("16x8_conv1",)),
                                     manifest, feeds)
    # --checkpoint=<workdir>/checkpoints/<step> picks the same checkpoint explicitly.
    step_dir = os.path.join(path, "checkpoints", "0")
    out2 = str(tmp_path / "g2.onnx")
    export_cli.run_export(None, step_dir, "onnx", out2, edit_layers=["16x8_conv1"])
    np.testing.assert_array_equal(onnx_runner(out2)(feeds), images)


def test_recipe_layers_become_edit_inputs(workdir, tmp_path):
    recipe = {"format": "stylegan_jax.recipe", "version": 1, "name": "mouth",
              "edits": [{"layer": "16x8_conv1", "channels": "1,3", "amount": 2.0},
                        {"layer": "8x4_conv", "channels": "0"},
                        {"layer": "16x8_conv1", "channels": "5"}]}
    recipe_path = tmp_path / "mouth.json"
    recipe_path.write_text(json.dumps(recipe))
    manifest = export_cli.run_export(workdir[0], None, "onnx", str(tmp_path / "g.onnx"),
                                     recipe=str(recipe_path))
    assert manifest["edit_layers"] == ["16x8_conv1", "8x4_conv"]
    assert manifest["recipe"]["name"] == "mouth" and len(manifest["recipe"]["edits"]) == 3


def test_missing_checkpoint_and_bad_layer_errors(workdir, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_cli.run_export(str(tmp_path / "nope"), None, "onnx", str(tmp_path / "g.onnx"))
    empty = tmp_path / "empty_run"
    empty.mkdir()
    (empty / "config.json").write_text(open(os.path.join(workdir[0], "config.json")).read())
    with pytest.raises(FileNotFoundError, match=r"no checkpoints?/? in .*train first"):
        export_cli.run_export(str(empty), None, "onnx", str(tmp_path / "g.onnx"))
    with pytest.raises(ValueError, match=r"unknown edit layer\(s\) 32x16_conv1: .*16x8_conv1$"):
        export_cli.run_export(workdir[0], None, "onnx", str(tmp_path / "g.onnx"),
                              edit_layers=["32x16_conv1"])
    assert not (tmp_path / "g.onnx").exists()


def test_command_line_error_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.export", f"--workdir={tmp_path / 'missing'}",
         f"--out={tmp_path / 'g.onnx'}"], cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, JAX_PLATFORMS="cpu"), check=False)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "missing does not exist" in last
