"""Anime portraits at 512x256 (height x width), grown from an 8x4 base.

    python -m experiments.train --config=rect_anime:/path/to/prepared/danbooru --workdir=workdirs/rect_anime

The argument is a prepared Danbooru portrait directory (experiments/prepare_danbooru.py). The
schedule is the paper's (600 + 600 kimg per resolution) from 8x4 up to 512x256, seven stages;
minibatch and learning rates follow the official table for the same larger side.
"""
from experiments.configs import _base


def prepare_hint(name):
    """How to make the data of config `name` (rect_anime or a variant): said when it is missing."""
    return (f"{name} trains on a prepared Danbooru set, given as --config={name}:DIR; prepare one "
            "with `python -m experiments.prepare_danbooru --metadata=... --images=... --out=DIR`")


def get_config(arg=None):
    """The rectangular anime model; `arg` = prepared dataset dir (default data/rect_anime)."""
    config = _base.get_base_config()
    config.data.source = arg or "data/rect_anime"  # prepared 512x256 Danbooru portraits
    config.data.prepare_hint = prepare_hint("rect_anime")  # the fix printed when the data is missing
    config.data.flip = True                   # portraits are left/right symmetric enough
    config.model.base_shape = (8, 4)          # 2:1 portraits: 8x4 -> 512x256
    config.model.num_stages = 7               # 8x4, 16x8, 32x16, 64x32, 128x64, 256x128, 512x256
    config.schedule.total_kimg = 15000.0      # ~ the paper's 1024 run minus two stages' worth
    config.schedule.lod_initial_resolution = 8  # start at 8x4 (the base)
    config.schedule.minibatch_base = 32       # global minibatch beyond the table
    config.schedule.minibatch_dict = _base.resolution_table(  # official 8-GPU sizes by larger side
        (8, 4), 7, [256, 128, 64, 32, 32, 32, 32])
    config.schedule.g_lrate_dict = {"res128": 0.0015, "res256": 0.002, "res512": 0.003}
    config.schedule.d_lrate_dict = {"res128": 0.0015, "res256": 0.002, "res512": 0.003}
    return config
