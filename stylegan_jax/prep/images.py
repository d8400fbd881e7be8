"""Safe image loading and crop + resize to the training shape.

Originals are only ever opened for reading. Anything PIL cannot decode (corrupt or truncated
files, decompression bombs, unknown formats) raises UnreadableImage, which the preparation loop
counts as a drop reason instead of stopping the run.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps

# Danbooru has legitimate images far above PIL's default bomb limit (~89 MP); 200 MP still
# protects against decompression bombs while keeping large scans.
DEFAULT_MAX_PIXELS = 200_000_000


class UnreadableImage(Exception):
    """The file is corrupt, truncated, of an unknown format or too large to decode safely."""


class MissingImage(UnreadableImage):
    """The file does not exist."""


def load_rgb(path, *, max_pixels: int = DEFAULT_MAX_PIXELS, exif_transpose: bool = False) -> Image.Image:
    """Decodes an image file fully into an RGB PIL image.

    Transparent pixels are composited onto white (transparent anime cut-outs are drawn for a white
    page, black would change their look). exif_transpose applies the camera orientation tag: use it
    for photo folders, not where box/landmark coordinates refer to the stored pixels.
    Raises UnreadableImage for anything that cannot be decoded.
    """
    if not os.path.isfile(path):
        raise MissingImage(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise UnreadableImage(f"{path}: {width}x{height} exceeds max_pixels={max_pixels}")
                image.load()  # decode now so truncated files fail here, not later
                if exif_transpose:
                    image = ImageOps.exif_transpose(image)
                return _to_rgb(image)
    except UnreadableImage:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError) as error:
        raise UnreadableImage(f"{path}: {error}") from error


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image.copy()
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def crop_resize(image: Image.Image, box, shape: tuple[int, int]) -> np.ndarray:
    """Crops box = (left, top, right, bottom) (floats allowed) and resizes to shape = (H, W).

    Lanczos resampling on the crop region directly (PIL's resize `box`), so sub-pixel crop edges
    are honoured and downscaling is properly low-pass filtered. Returns uint8 [H, W, 3].
    """
    height, width = shape
    resized = image.resize((width, height), Image.Resampling.LANCZOS, box=tuple(float(v) for v in box))
    return np.asarray(resized, dtype=np.uint8)


def centre_crop_box(image_size: tuple[int, int], shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """The largest centred (left, top, right, bottom) box of aspect shape = (H, W) in an image of
    PIL size (width, height)."""
    image_width, image_height = image_size
    target_height, target_width = shape
    scale = min(image_width / target_width, image_height / target_height)
    crop_width, crop_height = target_width * scale, target_height * scale
    left = (image_width - crop_width) / 2
    top = (image_height - crop_height) / 2
    return (left, top, left + crop_width, top + crop_height)
