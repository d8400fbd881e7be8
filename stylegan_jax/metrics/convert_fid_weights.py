"""Convert pytorch-fid's Inception weights (.pth state dict) to the .npz our FID network loads.

Only for users who have PyTorch; nothing else in stylegan_jax needs it. Usage:

    # get https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
    python -m stylegan_jax.metrics.convert_fid_weights pt_inception-2015-12-05-6726825d.pth fid_inception.npz

The .npz keeps pytorch-fid's key names and array layouts unchanged (the mapping to Flax is in
inception.py); the result is checked by loading it into the Flax network before it is written.
"""
from __future__ import annotations

import os

import numpy as np
from absl import app

from stylegan_jax.atomic import write_npz_atomically
from stylegan_jax.metrics.inception import variables_from_state_dict
from stylegan_jax.utils import exit_with_error


def read_torch_state_dict(pth_path: str) -> dict[str, np.ndarray]:
    """name -> numpy array from a torch .pth state dict (imports torch lazily)."""
    try:
        import torch
    except ImportError as error:
        raise ImportError("converting a .pth needs PyTorch: pip install torch (only for this conversion)") from error
    if not os.path.exists(pth_path):
        raise FileNotFoundError(f"no such weights file: '{pth_path}'")
    state_dict = torch.load(pth_path, map_location="cpu", weights_only=True)
    return {key: value.detach().cpu().numpy() for key, value in state_dict.items()}


def convert(pth_path: str, npz_path: str) -> None:
    """Read the pytorch-fid .pth, check it fits FIDInceptionV3, write it as .npz."""
    if not npz_path.endswith(".npz"):
        raise ValueError(f"output must end in .npz, got '{npz_path}'")
    arrays = read_torch_state_dict(pth_path)
    variables_from_state_dict(arrays, source=f"'{pth_path}'")   # raises on a wrong file before writing
    write_npz_atomically(npz_path, arrays)


def main(argv):
    if len(argv) != 3:
        raise app.UsageError("give two arguments, the pytorch-fid pt_inception-2015-12-05-*.pth to read and the "
                             f".npz to write; got {len(argv) - 1}: {' '.join(argv[1:])}")
    try:
        convert(argv[1], argv[2])
    except (ValueError, OSError, ImportError) as e:  # a wrong or missing file, or no PyTorch
        exit_with_error(e)
    print(f"wrote {argv[2]}")


if __name__ == "__main__":
    app.run(main)
