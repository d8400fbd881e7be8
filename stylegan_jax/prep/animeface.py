"""The AnimeFace 2009 detector (nvxs), called through its C library on a buffer of our own.

The `animeface` package on PyPI ships the nvxs library (animeface.libs/libnvxs-*.so) and a Python
extension that reads the pixels out of Pillow's internal image struct. That struct changed in
Pillow 12, and the extension then sees an empty image and returns no face for anything. This
module loads the same nvxs library with ctypes and runs the same pipeline as the extension's
`detect` (animeface/_nvxs.c: RGB -> nvxs BGR float matrix, nv_gray, 5x5 Gaussian, Laplacian,
integral images, nv_face_detect with the bundled MLPs and the same step, scale factor and
minimum window), so it does not depend on Pillow's internals.

`verify()` runs the detector on a drawn test face with a known box (assets/animeface_check.png)
and raises DetectorBroken when it is not found: a broken library then fails loudly at start-up
instead of reporting "no face" for every image.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np
from PIL import Image

MAX_FACES = 4096
# The parameters animeface's extension passes to nv_face_detect.
STEP, SCALE_FACTOR, MIN_WINDOW = 4.0, 1.095, 42.592
INSTALL_HINT = "pip install animeface==2.0.3"
CHECK_IMAGE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "animeface_check.png")
# The face box (x, y, width, height) nvxs finds on CHECK_IMAGE, and how far off it may be.
CHECK_BOX = (28, 28, 116, 116)
CHECK_TOLERANCE = 8


class DetectorBroken(ImportError):
    """The detector's package is missing, its library does not load, or it fails its self-check."""


class _Matrix(ctypes.Structure):  # nv_core_matrix.h: nv_matrix_t
    _fields_ = [("list", ctypes.c_int), ("list_step", ctypes.c_uint), ("n", ctypes.c_int), ("m", ctypes.c_int),
                ("rows", ctypes.c_int), ("cols", ctypes.c_int), ("step", ctypes.c_int), ("alias", ctypes.c_int),
                ("v", ctypes.POINTER(ctypes.c_float))]


class _Rect(ctypes.Structure):  # nv_core_util.h: nv_rect_t
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int)]


class _FacePosition(ctypes.Structure):  # nv_face_detect.h: nv_face_position_t
    _fields_ = [("likelihood", ctypes.c_float), ("face", _Rect), ("left_eye", _Rect), ("right_eye", _Rect),
                ("nose", _Rect), ("mouth", _Rect), ("chin", _Rect)]


def library_path() -> str:
    """The nvxs shared library the installed animeface package ships; raises DetectorBroken."""
    try:
        import animeface  # optional dependency: only its library is used
    except ImportError as error:
        raise DetectorBroken(f"the animeface detector needs the animeface package: {INSTALL_HINT}") from error
    package_dir = os.path.dirname(os.path.abspath(animeface.__file__))
    site = os.path.dirname(package_dir)
    found = sorted(glob.glob(os.path.join(site, "animeface.libs", "libnvxs*.so*"))
                   + glob.glob(os.path.join(package_dir, "libnvxs*.so*")))
    if not found:
        raise DetectorBroken(f"the animeface package in {package_dir} has no nvxs library "
                             f"(animeface.libs/libnvxs*.so): reinstall it with {INSTALL_HINT}")
    return found[0]


class NvxsLibrary:
    """The nvxs functions and trained MLPs, loaded from the animeface package's library."""

    def __init__(self, path: str | None = None):
        path = path or library_path()
        try:
            lib = ctypes.CDLL(path)
            self.mlps = {name: ctypes.c_void_p.in_dll(lib, f"nv_face_mlp_{name}")
                         for name in ("face_00", "face_01", "face_02", "dir", "parts")}
        except (OSError, ValueError) as error:
            raise DetectorBroken(f"cannot load the animeface library {path}: {error}; "
                                 f"reinstall it with {INSTALL_HINT}") from error
        matrix_p = ctypes.POINTER(_Matrix)
        lib.nv_matrix3d_alloc.restype = matrix_p
        lib.nv_matrix3d_alloc.argtypes = [ctypes.c_int] * 3
        lib.nv_matrix_zero.argtypes = [matrix_p]
        lib.nv_matrix_free.argtypes = [ctypes.POINTER(matrix_p)]
        lib.nv_gray.argtypes = [matrix_p, matrix_p]
        lib.nv_gaussian5x5.argtypes = [matrix_p, ctypes.c_int, matrix_p, ctypes.c_int]
        lib.nv_laplacian1.argtypes = [matrix_p, matrix_p, ctypes.c_float]
        lib.nv_integral.argtypes = [matrix_p, matrix_p, ctypes.c_int]
        lib.nv_face_detect.restype = ctypes.c_int
        lib.nv_face_detect.argtypes = [
            ctypes.POINTER(_FacePosition), ctypes.c_int, matrix_p, matrix_p, ctypes.POINTER(_Rect),
            ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_void_p,
            ctypes.c_float, ctypes.c_float, ctypes.c_float]
        self.lib = lib
        self.path = path

    def _matrix(self, channels: int, rows: int, cols: int):
        matrix = self.lib.nv_matrix3d_alloc(channels, rows, cols)
        if not matrix:
            raise MemoryError(f"nvxs could not allocate a {rows}x{cols}x{channels} matrix")
        self.lib.nv_matrix_zero(matrix)
        return matrix

    def detect(self, rgb: np.ndarray) -> list[tuple[float, tuple[int, int, int, int]]]:
        """Faces in a uint8 [H, W, 3] RGB array: [(likelihood, (x, y, width, height)), ...]."""
        rows, cols = rgb.shape[:2]
        lib = self.lib
        matrices = []
        try:
            bgr, gray, smooth, edge = (self._matrix(n, rows, cols) for n in (3, 1, 1, 1))
            gray_integral, edge_integral = (self._matrix(1, rows + 1, cols + 1) for _ in range(2))
            matrices = [bgr, gray, smooth, edge, gray_integral, edge_integral]
            step = bgr.contents.step  # floats per pixel (padded for SSE)
            pixels = np.ctypeslib.as_array(bgr.contents.v, shape=(rows * cols, step))
            pixels[:, :3] = rgb.reshape(-1, 3)[:, ::-1]  # nvxs channel order is B, G, R
            lib.nv_gray(gray, bgr)
            lib.nv_gaussian5x5(smooth, 0, gray, 0)
            lib.nv_laplacian1(edge, smooth, 4.0)
            lib.nv_integral(gray_integral, gray, 0)
            lib.nv_integral(edge_integral, edge, 0)
            size = _Rect(0, 0, cols, rows)
            faces = (_FacePosition * MAX_FACES)()
            bagging = (ctypes.c_void_p * 3)(ctypes.addressof(self.mlps["face_01"]),
                                            ctypes.addressof(self.mlps["face_02"]), None)
            count = lib.nv_face_detect(
                faces, MAX_FACES, gray_integral, edge_integral, ctypes.byref(size),
                ctypes.addressof(self.mlps["dir"]), ctypes.addressof(self.mlps["face_00"]), bagging, 2,
                ctypes.addressof(self.mlps["parts"]), STEP, SCALE_FACTOR, MIN_WINDOW)
        finally:
            for matrix in matrices:
                lib.nv_matrix_free(ctypes.byref(matrix))
        return [(float(f.likelihood), (f.face.x, f.face.y, f.face.width, f.face.height)) for f in faces[:count]]


def verify(library: NvxsLibrary) -> None:
    """Runs library on CHECK_IMAGE; raises DetectorBroken unless it finds the one known face."""
    with Image.open(CHECK_IMAGE) as image:
        found = library.detect(np.asarray(image.convert("RGB")))
    boxes = [box for _, box in found]
    if len(boxes) != 1 or max(abs(a - b) for a, b in zip(boxes[0], CHECK_BOX)) > CHECK_TOLERANCE:
        raise DetectorBroken(f"the animeface detector ({library.path}) fails its self-check: expected one face "
                             f"at {CHECK_BOX} in {CHECK_IMAGE}, found {boxes}; reinstall it with {INSTALL_HINT}")
