"""Generic helpers shared across the package: image listing, uint8 images and grids, JSON files,
strict JSON parsing, XLA options and the compilation cache, parameter counts, and how a command
ends on input it cannot use.

The bottom of the package: this module imports nothing from stylegan_jax, so every other module
may import it (tests/test_layering.py checks the import order).
"""
import json
import os
import re
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


JSON_MAX_DEPTH = 32      # nesting of arrays and objects
JSON_MAX_DIGITS = 1000   # digits of one integer (Python's own limit is 4300)
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON text (brackets inside strings do not count);
    linear in the text's length and without recursion, so it can run before parsing."""
    skeleton = _JSON_STRING.sub("", text).encode("utf-8", "replace")
    codes = np.frombuffer(skeleton, np.uint8)
    steps = (((codes == ord("[")) | (codes == ord("{"))).astype(np.int32)
             - ((codes == ord("]")) | (codes == ord("}"))).astype(np.int32))
    return int(np.cumsum(steps).max(initial=0))


def parse_json(text, what: str, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """JSON text (str or UTF-8 bytes) parsed strictly: nesting deeper than max_depth, integers of
    more than JSON_MAX_DIGITS digits and the non-standard NaN / Infinity are refused before they
    can exhaust the stack, the CPU or float parsing. A number too large for a float parses as
    inf (callers that need finite numbers check them). Raises one-line ValueErrors that begin
    with `what`."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{what} is not UTF-8 text") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"{what} nests arrays/objects {depth} deep: at most {max_depth} allowed")

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > JSON_MAX_DIGITS:
            raise ValueError(f"{what} holds an integer of {len(digits)} digits: at most "
                             f"{JSON_MAX_DIGITS} allowed")
        return int(digits)

    def constant(name: str):
        raise ValueError(f"{what} holds {name}, which is not JSON: numbers must be finite")

    try:
        return json.loads(text, parse_int=integer, parse_constant=constant)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} is not valid JSON ({e.msg} at line {e.lineno} column "
                         f"{e.colno})") from None


def parameter_count(tree) -> int:
    """The number of values in a pytree of arrays (a model's parameters)."""
    import jax  # pylint: disable=import-outside-toplevel  (the data and preparation side runs without it)
    return sum(int(np.size(leaf)) for leaf in jax.tree.leaves(tree))


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
