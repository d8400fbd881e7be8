"""ADA in the training loop: an interrupted and resumed run matches the uninterrupted one bit for
bit (p and the controller's statistics included), augmentation at p = 0 leaves the train step's
result unchanged, and checkpoints from before the augmentation fields existed still load."""
import functools
import os
import signal

import jax
import ml_collections
import numpy as np
import pytest

from experiments import config_flags
from stylegan_jax.training import loop, parallel, state as state_lib, steps
from helpers import leaves_by_path

pytestmark = pytest.mark.slow


def ada_config():
    """The smoke run with ADA: p starts at 0.5 and moves 0.16 per adjustment (every 4 steps of
    8 reals: 32 / (0.2 * 1000)), so its 12 steps adjust p three times and cannot end at 0.5."""
    config = config_flags.load_config("smoke", lock=False)
    config.augment.kind = "ada"
    config.augment.p = 0.5
    config.augment.speed_kimg = 0.2
    config.checkpoint.every_kimg = 0.008   # every step
    config.checkpoint.keep = 20
    return config


def test_ada_run_interrupted_mid_interval_resumes_bit_exactly(tmp_path):
    config = ada_config()
    expected = leaves_by_path(parallel.to_host(
        loop.train_and_evaluate(config, str(tmp_path / "uninterrupted"))))
    assert expected["step"] == 12
    assert expected["augment_p"] != np.float32(0.5)        # the controller moved p ...
    assert np.any(np.abs(expected["augment_p"] - np.float32([0.02, 0.18, 0.34, 0.66, 0.82, 0.98]))
                  < 1e-6)                                   # ... by whole steps of 0.16

    real_source = loop.pipeline_source(config, 0, 1)
    drawn = []

    def source_that_gets_preempted(**kwargs):
        for batch in real_source(**kwargs):
            drawn.append(1)
            if len(drawn) == 1 + 6:   # the grid's batch, then step 6's: 2 steps into an interval
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    workdir = str(tmp_path / "interrupted")
    stopped = parallel.to_host(loop.train_and_evaluate(config, workdir,
                                                       make_source=source_that_gets_preempted))
    assert int(stopped.step) == 6 and float(stopped.ada_stats[1]) == 16.0  # stats mid-interval
    resumed = leaves_by_path(parallel.to_host(loop.train_and_evaluate(config, workdir)))
    assert set(resumed) == set(expected)
    for name, want in expected.items():
        np.testing.assert_array_equal(resumed[name], want, err_msg=name)


def three_steps(config):
    """The state after three train steps (two at 8x4, one fading 16x8 in) on fixed batches."""
    config = ml_collections.FrozenConfigDict(config)
    G, D = state_lib.build_networks(config)
    mesh = parallel.make_mesh()
    repl = parallel.replicated(mesh)
    state = jax.jit(functools.partial(state_lib.init_train_state, G, D, config),
                    out_shardings=repl)()
    step = steps.make_train_step(G, D, config, repl)
    rng = np.random.default_rng(0)
    for stage, alpha in [(0, 1.0), (0, 1.0), (1, 0.5)]:
        batch = {"image": rng.uniform(-1, 1, (8, 8 * 2**stage, 4 * 2**stage, 3)).astype(np.float32),
                 "label": np.zeros((8, 0), np.float32)}
        state, _ = step(state, parallel.global_batch(batch, mesh), alpha, 2e-3, 2e-3, stage=stage,
                        apply_r1=True)
    return leaves_by_path(parallel.to_host(state))


def test_augmentation_at_p_zero_leaves_the_train_step_unchanged():
    """kind 'none' runs no augmentation at all (test_augment checks it is never called); the
    whole pipeline at p = 0, drawn and executed inside the step, R1's grad of grad included,
    gives the same state bit for bit."""
    config = config_flags.load_config("smoke", lock=False)
    plain = three_steps(config)
    config.augment.kind, config.augment.p = "fixed", 0.0
    augmented = three_steps(config)
    for name, want in plain.items():
        np.testing.assert_array_equal(augmented[name], want, err_msg=name)
