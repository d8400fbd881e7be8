"""Atomic file writes, the one way this project writes a file that must never be torn.

The content goes to a temporary file in the same folder (so the final rename stays on one file
system), which then replaces the target with os.replace: a crash, a kill or a preemption mid-write
leaves the old file (or none), never half of a new one. The temporary is removed when writing
fails; one left by a killed process is recognised by `is_temporary` (prepared datasets clean them
up on resume). Temporaries keep the target's extension, since writers such as np.savez, PIL and
imageio pick the format from it.
"""
import json
import os
from typing import Any, Callable, Dict

TEMP_MARK = ".partial"


def temporary_path(path: str) -> str:
    """Where `path` is written before it is renamed into place: <path>.partial<ext>."""
    return path + TEMP_MARK + os.path.splitext(path)[1]


def is_temporary(name: str) -> bool:
    """Whether a file name is one of our temporaries (left behind by a killed writer)."""
    return TEMP_MARK in os.path.basename(name)


def atomic_write(path: str, write: Callable[[str], Any]) -> str:
    """Calls write(temporary path), then renames the result onto `path`; returns `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temp = temporary_path(path)
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return path


def write_bytes_atomically(path: str, data: bytes) -> str:
    """Writes `data` to `path` atomically."""
    def write(temp):
        with open(temp, "wb") as f:
            f.write(data)
    return atomic_write(path, write)


def write_text_atomically(path: str, text: str) -> str:
    """Writes UTF-8 `text` to `path` atomically."""
    return write_bytes_atomically(path, text.encode("utf-8"))


def write_npz_atomically(path: str, arrays: Dict[str, Any]) -> str:
    """np.savez of `arrays` to `path` atomically (the temporary keeps the .npz extension)."""
    import numpy as np  # pylint: disable=import-outside-toplevel  (the other writers need none)
    return atomic_write(path, lambda temp: np.savez(temp, **arrays))


def write_json_atomically(path: str, obj: Any) -> str:
    """Writes `obj` as indented JSON (one trailing newline) to `path` atomically."""
    return write_text_atomically(path, json.dumps(obj, indent=1) + "\n")
