"""A tiny config for tests: two stages (8x4 -> 16x8), minuscule networks, a dozen steps.

    python -m experiments.train --config=smoke --workdir=/tmp/smoke

Runs in seconds on one CPU core; it checks plumbing, not image quality.
"""
from experiments.configs import _base


def get_config(arg=None):
    """Smoke test setup; `arg` is unused."""
    del arg
    config = _base.get_base_config()
    config.fast_compile = True                # compile time dominates a dozen tiny steps
    config.data.source = "synthetic_portraits"  # 64x32 procedural portraits, read at 16x8
    config.data.flip = False                  # keep batches easy to reason about in tests
    config.data.reseed_every_kimg = 0.04      # restart the data stream every 5 steps
    config.model.base_shape = (8, 4)
    config.model.num_stages = 2               # 8x4, 16x8
    config.generator.latent_size = 16
    config.generator.dlatent_size = 16
    config.generator.mapping_layers = 2
    config.generator.mapping_fmaps = 16
    config.generator.fmap_base = 32           # 16 channels at 8x4 and 16x8
    config.generator.fmap_max = 16
    config.discriminator.fmap_base = 32
    config.discriminator.fmap_max = 16
    config.schedule.total_kimg = 0.096        # 12 steps of 8: 4 at 8x4, 4 fading in, 4 at 16x8
    config.schedule.lod_initial_resolution = 8
    config.schedule.lod_training_kimg = 0.032
    config.schedule.lod_transition_kimg = 0.032
    config.schedule.minibatch_base = 8
    config.schedule.minibatch_dict = _base.resolution_table((8, 4), 2, [8, 8])
    config.schedule.g_lrate_dict = {}
    config.schedule.d_lrate_dict = {}
    config.checkpoint.every_kimg = 0.04       # every 5 steps
    config.checkpoint.keep = 2
    config.log.every_steps = 2
    config.log.sample_every_kimg = 0.048      # every 6 steps
    config.log.grid_rows = 2
    config.log.grid_cols = 4
    return config
