"""The training loop on the smoke config (real input pipeline, one CPU device, in-process).

One uninterrupted run (checkpointing every step) is shared by the tests; the interrupted and
resumed runs reuse its compiled programs, so the file costs about one run's compile time.
"""
import functools
import glob
import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
from tensorflow.core.util import event_pb2

from experiments import config_flags
from stylegan_jax import losses
from stylegan_jax.data import tf_cpu
from stylegan_jax.training import checkpoint, loop, parallel, state as state_lib, steps
from stylegan_jax.utils import cpu_compiler_options
from helpers import leaves_by_path, tree_digest

pytestmark = pytest.mark.slow

STEPS = 12           # smoke: 5 steps at 8x4, 3 fading 16x8 in, 4 at 16x8 (batch 8)
LAST_8X4_STEP = 5    # nimg 0..32 are stage 0; the step from nimg 40 on is stage 1


def smoke_config():
    config = config_flags.load_config("smoke", lock=False)
    config.checkpoint.every_kimg = 0.008   # every step, so tests can look at any of them
    config.checkpoint.keep = 20
    config.metrics.every_kimg = 0.048      # SWD every 6 steps, on few images (plumbing only)
    config.metrics.num_images = 16
    config.metrics.batch_size = 8
    return config


@functools.lru_cache(maxsize=None)
def initial_state():
    """The smoke run's state at step 0 (the loop's own init, compiled once for this file)."""
    config = smoke_config()
    G, D = state_lib.build_networks(config)
    return jax.jit(functools.partial(state_lib.init_train_state, G, D, config),
                   out_shardings=parallel.replicated(parallel.make_mesh()),
                   compiler_options=cpu_compiler_options(True))()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("uninterrupted"))
    final = loop.train_and_evaluate(smoke_config(), workdir)
    return workdir, parallel.to_host(final)


def restore(workdir, step):
    config = smoke_config()
    G, D = state_lib.build_networks(config)
    abstract = jax.eval_shape(lambda: state_lib.init_train_state(G, D, config))
    return checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), 20).restore(
        abstract, step=step)[0]


def test_run_writes_checkpoints_samples_and_logs(finished_run):
    workdir, final = finished_run
    assert int(final.step) == STEPS and int(final.nimg) == 8 * STEPS
    ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), 20)
    assert ckpt.all_steps() == list(range(1, STEPS + 1))
    grids = sorted(os.path.basename(p) for p in glob.glob(os.path.join(workdir, "samples", "*")))
    assert grids == ["fakes_0000006.png", "fakes_0000012.png", "reals.png"]  # every 48 images
    events = glob.glob(os.path.join(workdir, "tensorboard", "events.*"))
    assert len(events) == 1
    tags = {}
    for record in tf_cpu.tensorflow_on_cpu().data.TFRecordDataset(events):
        event = event_pb2.Event.FromString(record.numpy())
        for value in event.summary.value:
            tags.setdefault(value.tag, value.metadata.plugin_data.plugin_name)
    assert {tags[t] for t in ("d_loss", "g_loss", "kimg", "alpha", "images_per_second",
                              "metrics/swd_avg")} == {"scalars"} and tags["fakes"] == "images"
    # Quality metrics every 48 images, at the stage's resolution (16x8, enlarged to SWD's 16-px
    # minimum short side: 32x16), one JSON line each.
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [6, 12]
    assert [r["resolution"] for r in records] == [[16, 8], [16, 8]]
    assert records[0]["alpha"] < 1.0 == records[1]["alpha"]
    for r in records:
        assert set(r) >= {"swd_32x16", "swd_avg"} and np.isfinite(r["swd_avg"]) and r["swd_avg"] > 0
    assert os.path.isfile(os.path.join(workdir, "config.json"))


def test_stage_change_keeps_the_earlier_stages_parameters(finished_run):
    """Before the change the 16x8 layers are untouched; across it the 8x4 ones move by one
    Adam step only (after the reset, |update| <= lr with beta1 = 0), not re-initialized."""
    workdir, _ = finished_run
    config = smoke_config()
    init = leaves_by_path(initial_state())
    end_of_8x4 = leaves_by_path(restore(workdir, LAST_8X4_STEP))
    first_16x8 = leaves_by_path(restore(workdir, LAST_8X4_STEP + 1))
    lr = config.schedule.g_lrate_base
    params = [k for k in init if k.split("/")[0] in ("g_params", "d_params")]
    new_layers = [k for k in params if "16x8" in k]
    old_layers = [k for k in params if "16x8" not in k]
    assert len(new_layers) >= 8 and len(old_layers) >= 8
    for name in new_layers:
        np.testing.assert_array_equal(end_of_8x4[name], init[name], err_msg=name)
    assert any(not np.array_equal(first_16x8[k], init[k]) for k in new_layers)
    trained = [k for k in old_layers if not np.array_equal(end_of_8x4[k], init[k])]
    assert len(trained) >= 0.9 * len(old_layers)       # stage 0 really trained ...
    for name in old_layers:                             # ... and survived the change
        old, new = end_of_8x4[name], first_16x8[name]
        rounding = 2 * np.spacing(np.maximum(np.abs(old), np.abs(new)))  # float32 p + update
        assert np.all(np.abs(new - old) <= lr + rounding), name
    assert int(leaves_by_path(restore(workdir, LAST_8X4_STEP + 1))["g_opt_state/count"]) == 1


def test_sigterm_mid_stage_then_restart_matches_the_uninterrupted_run(finished_run, tmp_path):
    _, expected = finished_run
    config = smoke_config()
    # No quality metrics here (they read the source too, which would shift the signal's batch);
    # matching the run that measured them also shows that measuring leaves training untouched.
    config.metrics.every_kimg = 0.0
    real_source = loop.pipeline_source(config, 0, 1)
    drawn = []

    def source_that_gets_preempted(**kwargs):
        for batch in real_source(**kwargs):
            drawn.append(1)
            if len(drawn) == 1 + 8:   # the grid's batch, then the batch of step 8 (16x8 fade-in)
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    workdir = str(tmp_path)
    handler_before = signal.getsignal(signal.SIGTERM)
    stopped = loop.train_and_evaluate(config, workdir, make_source=source_that_gets_preempted)
    assert int(stopped.step) == 8    # finished the signalled step, saved, returned
    assert checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), 20).latest_step() == 8
    assert signal.getsignal(signal.SIGTERM) is handler_before  # handlers restored
    resumed = parallel.to_host(loop.train_and_evaluate(config, workdir))
    for name, want in leaves_by_path(expected).items():
        np.testing.assert_array_equal(leaves_by_path(resumed)[name], want, err_msg=name)


@pytest.mark.parametrize("change, expected", [
    ("corrupt", "is unreadable"), ("other_config", "was made with a different config")])
def test_bad_checkpoint_stops_the_run_and_is_not_overwritten(finished_run, tmp_path, change,
                                                              expected):
    workdir = str(tmp_path / "copy")
    shutil.copytree(finished_run[0], workdir)
    config = smoke_config()
    if change == "corrupt":
        for path in glob.glob(os.path.join(workdir, "checkpoints", str(STEPS), "state", "*")):
            if os.path.isfile(path):
                open(path, "wb").close()   # truncated to nothing
    else:
        config.generator.fmap_max = 8
    before = tree_digest(workdir)
    with pytest.raises(checkpoint.CheckpointError, match=expected):
        loop.train_and_evaluate(config, workdir)
    assert tree_digest(workdir) == before


def test_a_few_steps_lower_the_d_loss_on_a_fixed_batch():
    config = ml_collections.FrozenConfigDict(smoke_config())  # shares the loop's compiled step
    G, D = state_lib.build_networks(config)
    mesh = parallel.make_mesh()
    repl = parallel.replicated(mesh)
    state = initial_state()
    reals = next(loop.pipeline_source(config, 0, 1)(resolution=(8, 4), batch_size=8, seed=1))
    batch = parallel.global_batch(reals, mesh)
    z = jax.random.normal(jax.random.PRNGKey(7), (8, G.latent_size))
    fakes = jax.jit(lambda p: G.apply({"params": p}, z, stage=0, noise_mode="const"))(
        state.g_params)

    @jax.jit
    def d_loss(d_params):   # on the fixed reals and the initial generator's fixed fakes
        score = lambda x: D.apply({"params": d_params}, x, stage=0)
        return losses.d_logistic_loss(score(batch["image"]), score(fakes))

    train_step = steps.make_train_step(G, D, config, repl)
    before = float(d_loss(state.d_params))
    for _ in range(10):
        state, metrics = train_step(state, batch, 1.0, 2e-3, 2e-3, stage=0, apply_r1=True)
    assert np.isfinite(float(metrics["d_loss"])) and np.isfinite(float(metrics["g_loss"]))
    assert float(d_loss(state.d_params)) < 0.97 * before


def test_evaluate_cli_measures_the_runs_generator_and_rejects_bad_requests(finished_run, tmp_path):
    workdir = str(tmp_path / "copy")
    shutil.copytree(finished_run[0], workdir)
    before = tree_digest(os.path.join(workdir, "checkpoints"))

    def evaluate(*flags):
        return subprocess.run([sys.executable, "-m", "experiments.evaluate", *flags],
                              capture_output=True, text=True, check=False,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    result = evaluate(f"--workdir={workdir}", "--metrics=swd,ppl", "--num_images=16",
                      "--batch_size=8", "--ppl_samples=16")
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(result.stdout.strip().splitlines()[-1])
    # The newest checkpoint is the finished 16x8 stage; SWD runs on the data at that size.
    assert record["resolution"] == [16, 8] and record["data"] == "synthetic_portraits"
    assert np.isfinite(record["metrics"]["swd_avg"]) and record["metrics"]["ppl"] > 0
    with open(os.path.join(workdir, f"eval_{STEPS}.json"), encoding="utf-8") as f:
        assert json.load(f)["metrics"] == record["metrics"]
    assert tree_digest(os.path.join(workdir, "checkpoints")) == before  # read-only on the run
    for flags, message in [((f"--workdir={workdir}", "--metrics=lpips"), "unknown metrics"),
                           ((f"--workdir={workdir}", "--metrics=fid"), "inception_weights"),
                           ((f"--workdir={tmp_path}/nowhere",), "does not exist")]:
        result = evaluate(*flags)
        assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
