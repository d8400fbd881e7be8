"""FFHQ at 1024x1024 with the StyleGAN paper's schedule and hyperparameters (8-GPU table).

    python -m experiments.train --config=ffhq:/path/to/prepared/ffhq --workdir=workdirs/ffhq

The argument is the dataset: a prepared directory (made by experiments/prepare_*.py),
`folder:/path/to/pngs` or a TFDS name. Everything else is `_base.py`: 25000 kimg, 600 + 600 kimg
per resolution from 8x8, minibatch 256..32, learning rate 0.001 rising to 0.003 at 512 and 1024,
R1 gamma 10, mixing 0.9.
"""
from experiments.configs import _base


def get_config(arg=None):
    """The paper's FFHQ run; `arg` = data source (default: a prepared dir at data/ffhq)."""
    config = _base.get_base_config()
    config.data.source = arg or "data/ffhq"  # 70k aligned faces, 1024x1024
    config.data.prepare_hint = (  # the fix printed when the data is missing
        "ffhq trains on FFHQ's 1024x1024 aligned faces, given as --config=ffhq:SOURCE: the released "
        "PNGs as folder:PATH (e.g. --config=ffhq:folder:ffhq/images1024x1024), a prepared dataset "
        "directory or a built TFDS dataset")
    return config
