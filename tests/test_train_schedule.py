"""The progressive schedule against values worked out by hand from the official formula.

Official (NVlabs/stylegan training_loop.training_schedule), FFHQ: resolution_log2 = 10,
lod_initial_resolution = 8, 600 + 600 kimg per phase:
  lod = 10 - 3 - phase_idx - max(phase_kimg - 600, 0) / 600,  resolution = 2**(10 - floor(lod)).
"""
import math
import os
import subprocess
import sys

import pytest

from experiments import config_flags
from stylegan_jax.training import schedule


@pytest.fixture
def ffhq():
    return config_flags.load_config("ffhq", lock=False)


def at(config, kimg):
    return schedule.phase_at(int(kimg * 1000), config.schedule,
                             base_shape=tuple(config.model.base_shape),
                             num_stages=config.model.num_stages)


@pytest.mark.parametrize("kimg, lod, resolution, alpha, minibatch, lr", [
    (0, 7.0, 8, 1.0, 256, 0.001),          # start at 8x8 (stage 1 of a 4x4 base)
    (600, 7.0, 8, 1.0, 256, 0.001),        # end of the first training half
    (900, 6.5, 16, 0.5, 128, 0.001),       # half-way through fading 16x16 in
    (1200, 6.0, 16, 1.0, 128, 0.001),      # 16x16 fully in
    (1950, 5.75, 32, 0.25, 64, 0.001),     # 750 of 1200 in phase 1: 150/600 into the fade
    (5100, 3.0, 128, 1.0, 32, 0.0015),     # phase 4 (from 4800), still training 128x128
    (5700, 2.5, 256, 0.5, 32, 0.002),      # phase 4: 300 kimg into fading 256 in
    (8100, 0.5, 1024, 0.5, 32, 0.003),     # fading the last resolution in
    (8400, 0.0, 1024, 1.0, 32, 0.003),     # schedule complete
    (25000, 0.0, 1024, 1.0, 32, 0.003),    # lod is clamped at 0 afterwards
])
def test_ffhq_schedule_matches_the_official_formula(ffhq, kimg, lod, resolution, alpha,
                                                    minibatch, lr):
    phase = at(ffhq, kimg)
    assert phase.lod == pytest.approx(lod)
    assert phase.shape == (resolution, resolution)
    assert phase.stage == int(math.log2(resolution)) - 2   # stage 0 = 4x4
    assert phase.alpha == pytest.approx(alpha)
    assert phase.minibatch == minibatch
    assert phase.g_lr == phase.d_lr == pytest.approx(lr)


def test_rectangular_schedule_keys_by_the_larger_side():
    config = config_flags.load_config("rect_anime")
    assert at(config, 0).shape == (8, 4) and at(config, 0).minibatch == 256
    fading = at(config, 900)
    assert (fading.shape, fading.stage, fading.alpha, fading.minibatch) == ((16, 8), 1, 0.5, 128)
    top = at(config, 15000)
    assert (top.shape, top.stage, top.alpha, top.g_lr) == ((512, 256), 6, 1.0, 0.003)


def test_optimizer_segments_change_exactly_where_the_official_loop_resets(ffhq):
    """Official: reset when floor(lod) or ceil(lod) differs from the previous step's."""
    previous = None
    for nimg in range(0, 9_000_000, 50_000):
        phase = schedule.phase_at(nimg, ffhq.schedule, base_shape=(4, 4), num_stages=9)
        if previous is not None:
            official_reset = (math.floor(phase.lod) != math.floor(previous.lod)
                              or math.ceil(phase.lod) != math.ceil(previous.lod))
            assert (phase.opt_segment != previous.opt_segment) == official_reset, nimg
            assert phase.opt_segment >= previous.opt_segment
        previous = phase


def test_learning_rate_rampup(ffhq):
    ffhq.schedule.lrate_rampup_kimg = 100.0
    assert at(ffhq, 25).g_lr == pytest.approx(0.001 * 0.25)
    assert at(ffhq, 400).d_lr == pytest.approx(0.001)


def test_no_growing_starts_at_the_top(ffhq):
    ffhq.schedule.lod_initial_resolution = 1024
    ffhq.schedule.lod_training_kimg = ffhq.schedule.lod_transition_kimg = 0.0
    phase = at(ffhq, 0)
    assert (phase.stage, phase.alpha, phase.lod) == (8, 1.0, 0.0)


def test_bad_initial_resolution_lists_the_choices(ffhq):
    ffhq.schedule.lod_initial_resolution = 12
    with pytest.raises(ValueError, match="choose one of 4, 8, 16, 32, 64, 128, 256, 512, 1024"):
        at(ffhq, 0)


def test_minibatch_must_split_over_devices_and_groups(ffhq):
    schedule.check_minibatches(ffhq.schedule, base_shape=(4, 4), num_stages=9, multiple=32)
    with pytest.raises(ValueError, match=r"minibatch 32 at res64 is not a positive multiple of "
                                         r"64 .*schedule.minibatch_dict.res64"):
        schedule.check_minibatches(ffhq.schedule, base_shape=(4, 4), num_stages=9, multiple=64)


@pytest.mark.slow
def test_train_cli_reports_a_minibatch_that_does_not_split_in_one_line(tmp_path):
    """6 images per step cannot form minibatch-stddev groups of 4: one line naming the key and the
    fix, exit status 2, before anything trains or is written."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workdir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--config=smoke", f"--workdir={workdir}",
         "--config.schedule.minibatch_dict.res8=6"],
        capture_output=True, text=True, check=False, cwd=repo,
        env=dict(os.environ, PYTHONPATH=repo, JAX_PLATFORMS="cpu"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: minibatch 6 at res8 is not a positive multiple of 4 (devices x minibatch-stddev "
        "group): set schedule.minibatch_dict.res8 or schedule.minibatch_base to a multiple of 4")
    assert not os.path.exists(workdir / "checkpoints") or not os.listdir(workdir / "checkpoints")
