"""Input convention shared by the metrics: NHWC images, uint8 [0, 255] or float [-1, 1]."""
from __future__ import annotations

import numpy as np


def as_signed_unit_images(images) -> np.ndarray:
    """NHWC uint8 [0, 255] or float [-1, 1] images -> float32 in [-1, 1] (floats are not clipped)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be NHWC (4-D), got shape {images.shape}")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 127.5 - 1.0
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 in [0, 255] or float in [-1, 1], got dtype {images.dtype}")
    return images.astype(np.float32)
