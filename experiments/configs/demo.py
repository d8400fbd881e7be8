"""Synthetic 64x32 portraits in about a quarter of an hour on a 2-core CPU: the README's run.

    python -m experiments.train --config=demo --workdir=workdirs/demo

Grows from 8x4 to 64x32 with small channel counts, batch 16: 5 kimg per fade-in and per lower
stage, so that most of the time (40 of 70 kimg) goes to the final 64x32 stage, where the faces
take shape. Measured on a 2-core CPU: 12.5 min wall (dataset already built; building it takes
about half a minute more on a fresh machine); the final grid shows rough but recognisable
portraits (hair around a face with eyes and mouth, clothes below).
`--config=demo:long` (10 kimg per phase, then 120 at 64x32: 170 kimg, 35 min) trained the
explorer's bundled generator (stylegan_jax/assets/demo_generator.*).
"""
from experiments.configs import _base


def get_config(arg=None):
    """The demo; arg 'long' is the longer schedule of the bundled generator."""
    if arg not in (None, "", "long"):
        raise ValueError(f"unknown demo variant '{arg}': choose 'long' or nothing")
    config = _base.get_base_config()
    config.data.source = "synthetic_portraits"  # 64x32 procedurally drawn portraits
    config.data.flip = True
    config.data.reseed_every_kimg = 20.0
    config.model.base_shape = (8, 4)
    config.model.num_stages = 4               # 8x4, 16x8, 32x16, 64x32
    config.generator.latent_size = 64
    config.generator.dlatent_size = 64
    config.generator.mapping_layers = 4
    config.generator.mapping_fmaps = 64
    config.generator.fmap_base = 128          # 32, 32, 16, 8 channels from 8x4 to 64x32
    config.generator.fmap_max = 32
    config.discriminator.fmap_base = 128
    config.discriminator.fmap_max = 32
    # The time at 64x32 is what makes faces (eyes, mouth, hairband: what the explorer edits).
    phase_kimg = 10.0 if arg == "long" else 5.0   # each fade-in, and each stage below 64x32
    config.schedule.total_kimg = 170.0 if arg == "long" else 70.0  # the rest is at 64x32
    config.schedule.lod_initial_resolution = 8
    config.schedule.lod_training_kimg = phase_kimg
    config.schedule.lod_transition_kimg = phase_kimg
    config.schedule.minibatch_base = 16
    # Small batches: on a CPU the number of steps, not images per step, limits early learning.
    config.schedule.minibatch_dict = _base.resolution_table((8, 4), 4, [16, 16, 16, 16])
    config.schedule.g_lrate_base = 0.002      # small networks, few steps: a bit faster than 0.001
    config.schedule.d_lrate_base = 0.002
    config.schedule.g_lrate_dict = {}
    config.schedule.d_lrate_dict = {}
    # The paper's 10-kimg half-life would average over a seventh of this short run, early noise
    # included; 1 kimg keeps the sample grids up with training.
    config.loss.g_ema_half_life_kimg = 1.0
    config.checkpoint.every_kimg = 10.0
    config.checkpoint.keep = 3
    config.log.every_steps = 10
    config.log.sample_every_kimg = 10.0
    config.log.grid_rows = 4
    config.log.grid_cols = 8
    return config
