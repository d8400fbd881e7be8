"""Generic helpers shared across the package: image listing, uint8 images and grids, JSON files,
XLA options and the compilation cache, and how a command ends on input it cannot use.

The bottom of the package: this module imports nothing from stylegan_jax, so every other module
may import it (tests/test_layering.py checks the import order).
"""
import json
import os
import sys
from typing import Any, NoReturn, Optional

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def list_images(root: str) -> list[str]:
    """Paths (relative to root, '/'-separated) of every image file (IMAGE_EXTENSIONS, any case;
    hidden files skipped) under root, sorted: a fixed order, so preparation runs can resume."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} not found")
    found = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories.sort()
        for name in names:
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                found.append(os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/"))
    return sorted(found)


def to_uint8(images) -> np.ndarray:
    """[-1, 1] float images -> uint8 [0, 255]."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """[rows*cols, H, W, C] -> one [rows*H, cols*W, C] image, row-major."""
    n, h, w, c = images.shape
    assert n == rows * cols, (n, rows, cols)
    return images.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def read_json(path: str, missing: str) -> Any:
    """The parsed content of the JSON file at path (UTF-8).

    missing is the message of the FileNotFoundError raised when path is not a file: one line that
    names the file and says how to get it.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(missing)
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def cpu_compiler_options(fast: bool):
    """XLA options: on CPU, fast=True skips LLVM optimizations (compiles ~2x faster, runs slower).

    Used for functions that run rarely (init, optimizer reset, sample grids) and, with
    config.fast_compile, for the train step of short runs such as tests.
    """
    import jax  # pylint: disable=import-outside-toplevel  (the data and preparation side runs without it)
    return {"xla_backend_optimization_level": 0} if fast and jax.default_backend() == "cpu" else None


# Where compiled XLA programs are kept between runs; "off" keeps none.
COMPILATION_CACHE_ENV = "STYLEGAN_JAX_COMPILATION_CACHE"


def default_compilation_cache_dir() -> str:
    """$STYLEGAN_JAX_COMPILATION_CACHE, else <user cache dir>/stylegan_jax/jax_cache."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get(COMPILATION_CACHE_ENV) or os.path.join(cache_home, "stylegan_jax", "jax_cache")


def enable_compilation_cache(path: Optional[str] = None, min_compile_seconds: float = 1.0) -> Optional[str]:
    """Turns on JAX's persistent compilation cache, so that a second start of a command loads the
    programs the first one compiled (train steps, samplers, the explorer's renders) instead of
    compiling them again. Programs that compiled faster than min_compile_seconds are not kept.

    path: the cache directory (default: default_compilation_cache_dir()); "off" turns it off.
    Returns the directory used, or None when off. Call it before the first jit compiles.
    """
    path = path or default_compilation_cache_dir()
    if path.lower() == "off":
        return None
    import jax  # pylint: disable=import-outside-toplevel  (this module imports no JAX at load)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    return path


class ConfigError(ValueError):
    """A config value a run cannot use; its message names the field and the fix (commands print
    it as one line)."""


# Exit status of a command given input it cannot use (a missing dataset or file, a bad value);
# absl's own flag errors exit with 1.
BAD_INPUT = 2


def exit_with_error(error) -> NoReturn:
    """Ends a command: prints `error: MESSAGE` as one line on stderr, exits with status BAD_INPUT.

    Commands catch the errors whose messages name the fix (ValueError, FileNotFoundError, ...)
    around their work and end through this, never with a traceback."""
    message = " ".join(str(error).splitlines())
    print(f"error: {message}", file=sys.stderr)
    sys.exit(BAD_INPUT)
