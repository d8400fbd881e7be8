"""A diverged run stops with one line naming the step, the stage and the last good checkpoint, and
never writes a non-finite checkpoint: NaNs injected in a batch, in a parameter, and a learning
rate so large that training blows up through the command line."""
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments import config_flags
from stylegan_jax.training import checkpoint, loop, state as state_lib
from test_train_checkpoint import abstract, tiny_state, tree_digest

BAD_STEP = 4   # a stage-0 step of the smoke run (steps 1-5 are at 8x4, batch 8)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def smoke_config():
    config = config_flags.load_config("smoke", lock=False)
    config.checkpoint.every_kimg = 0.008   # every step: the last good one is the step before
    config.checkpoint.keep = 20
    return config


def with_nan(tree, path):
    """`tree` with the first element of the array at `path` ('g_params/.../weight') set to NaN."""
    def poison(p, x):
        return x.at[(0,) * x.ndim].set(np.nan) if checkpoint._path_str(p) == path else x  # pylint: disable=protected-access
    return jax.tree_util.tree_map_with_path(poison, tree)


def test_save_refuses_a_non_finite_state_and_keeps_the_last_good_one(tmp_path):
    directory = str(tmp_path / "ck")
    ckpt = checkpoint.Checkpointer(directory, keep=3)
    with pytest.raises(checkpoint.NonFiniteError,
                       match=f"no checkpoint was saved in {re.escape(directory)} before it"):
        ckpt.save(with_nan(tiny_state(1), "w_avg"), {"nimg": 8})
    assert ckpt.all_steps() == []
    ckpt.save(tiny_state(3), {"nimg": 24})
    ckpt.wait()
    before = tree_digest(directory)
    bad = with_nan(with_nan(tiny_state(4), "d_opt_state/mu/dense/kernel"), "g_params/dense/kernel")
    with pytest.raises(checkpoint.NonFiniteError) as error:
        ckpt.save(bad, {"nimg": 32})
    assert str(error.value) == (
        f"2 arrays are (g_params/dense/kernel, d_opt_state/mu/dense/kernel) not finite, so step 4 "
        f"was not saved; "
        f"the last good checkpoint is {directory}/3 (kept)")
    ckpt.close()
    assert tree_digest(directory) == before
    restored, _ = checkpoint.Checkpointer(directory, keep=3).restore(abstract(tiny_state(0)))
    assert int(restored.step) == 3 and checkpoint.non_finite_arrays(jax.device_get(restored)) == []


def assert_stopped_at_bad_step(workdir, message, what):
    """The run stopped at BAD_STEP with a one-line message; checkpoints 1..BAD_STEP-1 remain, the
    last restores with finite arrays."""
    ckpt_dir = os.path.join(workdir, "checkpoints")
    assert message == (
        f"training diverged at step {BAD_STEP} (stage 0 at 8x4, {8 * BAD_STEP / 1000:.3f} kimg): "
        f"{what}; the last good checkpoint is {ckpt_dir}/{BAD_STEP - 1} (kept); to go on, run "
        f"again with lower learning rates (--config.schedule.g_lrate_base, "
        f"--config.schedule.d_lrate_base)")
    ckpt = checkpoint.Checkpointer(ckpt_dir, 20)
    assert ckpt.all_steps() == list(range(1, BAD_STEP))
    config = smoke_config()
    G, D = state_lib.build_networks(config)
    state, meta = ckpt.restore(jax.eval_shape(lambda: state_lib.init_train_state(G, D, config)))
    assert int(state.step) == BAD_STEP - 1 and meta["stage"] == 0
    host = jax.device_get(state)
    assert checkpoint.non_finite_arrays(host) == []
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(host.g_params))


@pytest.mark.slow
def test_a_nan_image_stops_the_run_at_its_step(tmp_path):
    config = smoke_config()
    real_source = loop.pipeline_source(config, 0, 1)
    drawn = []

    def source_with_a_nan_image(**kwargs):
        for batch in real_source(**kwargs):
            drawn.append(1)
            if len(drawn) == 1 + BAD_STEP:   # the grid's batch, then one batch per step
                batch = dict(batch, image=np.asarray(batch["image"], np.float32).copy())
                batch["image"][0, 0, 0, 0] = np.nan
            yield batch

    workdir = str(tmp_path)
    with pytest.raises(checkpoint.NonFiniteError) as error:
        loop.train_and_evaluate(config, workdir, make_source=source_with_a_nan_image)
    losses = re.search(r"its losses are not finite \(([^)]*)\)", str(error.value))
    assert losses and "d_loss=nan" in losses.group(1)
    assert_stopped_at_bad_step(workdir, str(error.value),
                               f"its losses are not finite ({losses.group(1)}), so it was not saved")


@pytest.mark.slow
def test_a_nan_parameter_with_finite_losses_is_not_saved(tmp_path, monkeypatch):
    """A step whose losses are finite but whose update left a NaN in G is caught by the save."""
    real_make_train_step = loop.make_train_step

    def make_poisoning_step(*args, **kwargs):
        train_step = real_make_train_step(*args, **kwargs)

        def poisoning_step(state, *step_args, **step_kwargs):
            state, metrics = train_step(state, *step_args, **step_kwargs)
            if int(state.step) == BAD_STEP:
                state = with_nan(state, name)
            return state, metrics
        return poisoning_step

    config = smoke_config()
    shapes = jax.eval_shape(lambda: state_lib.init_train_state(*state_lib.build_networks(config),
                                                               config))
    name = next(n for n in checkpoint.tree_shapes(shapes) if n.startswith("g_params/"))
    monkeypatch.setattr(loop, "make_train_step", make_poisoning_step)
    loop._programs.cache_clear()  # pylint: disable=protected-access
    try:
        with pytest.raises(checkpoint.NonFiniteError) as error:
            loop.train_and_evaluate(config, str(tmp_path))
    finally:
        loop._programs.cache_clear()  # pylint: disable=protected-access
    assert_stopped_at_bad_step(str(tmp_path), str(error.value),
                               f"{name} is not finite, so step {BAD_STEP} was not saved")


@pytest.mark.slow
def test_train_cli_prints_one_line_and_fails_when_the_losses_blow_up(tmp_path):
    workdir = str(tmp_path / "run")
    result = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--config=smoke", f"--workdir={workdir}",
         "--config.schedule.g_lrate_base=1e30", "--config.schedule.d_lrate_base=1e30"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"error: training diverged at step \d+ \(stage 0 at 8x4, [0-9.]+ kimg\): "
                        r"its losses are not finite \(.*=(nan|inf|-inf).*\), so it was not saved; "
                        r".*; to go on, run again with lower learning rates .*", last), last
    assert checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), 2).all_steps() == []
