"""FFHQ-style crops from facial landmarks: the rotated face square plus the same height below.

FFHQ (Karras et al. 2019, github.com/NVlabs/ffhq-dataset) aligns each face from its landmarks: with
eye centres e_l, e_r and mouth corners m_l, m_r, eye_avg = (e_l + e_r) / 2,
eye_to_eye = e_r - e_l, eye_to_mouth = (m_l + m_r) / 2 - eye_avg,
  x = eye_to_eye - rot90(eye_to_mouth), scaled to length max(2 |eye_to_eye|, 1.8 |eye_to_mouth|),
  y = rot90(x) (pointing down the face),  c = eye_avg + 0.1 eye_to_mouth,
and the face square has corners c +- x +- y (side 2 |x|). The variant here keeps the square's
top and orientation and extends it downward by the same height, giving a 2:1 (H:W) crop for
512x256; other aspects widen/narrow it about the face's vertical axis. Crops leaving the image are
dropped (FFHQ pads with blurred reflections instead): "no_room_below" when the face square fits
but the extension does not, which is why only ~20,000 of FFHQ's 70,000 photos survive.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from stylegan_jax.utils import read_json

# 68-point (iBUG / dlib) indices
_LEFT_EYE, _RIGHT_EYE, _MOUTH_LEFT, _MOUTH_RIGHT = slice(36, 42), slice(42, 48), 48, 54
_FIVE_POINTS = ("eye_left", "eye_right", "mouth_left", "mouth_right")


def five_points(landmarks) -> np.ndarray:
    """[4, 2] (eye_left, eye_right, mouth_left, mouth_right) from 68 (x, y) points or from a dict
    with those four names."""
    if isinstance(landmarks, dict):
        missing = [name for name in _FIVE_POINTS if name not in landmarks]
        if missing:
            raise ValueError(f"landmarks lack {', '.join(missing)}: give 68 points or "
                             f"{', '.join(_FIVE_POINTS)}")
        return np.array([landmarks[name] for name in _FIVE_POINTS], np.float64)
    points = np.asarray(landmarks, np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"landmarks of shape {points.shape}: give 68 (x, y) points or a dict of "
                         f"{', '.join(_FIVE_POINTS)}")
    return np.stack([points[_LEFT_EYE].mean(0), points[_RIGHT_EYE].mean(0), points[_MOUTH_LEFT],
                     points[_MOUTH_RIGHT]])


def read_landmarks(path: str) -> list[tuple[str, np.ndarray]]:
    """(image path relative to the image root, [4, 2] points), sorted by path.

    Reads FFHQ's ffhq-dataset-v2.json ({id: {"in_the_wild": {"file_path", "face_landmarks"}}}) or a
    plain {relative image path: 68 points or {eye_left, eye_right, mouth_left, mouth_right}}."""
    entries = read_json(path, f"landmarks file {path!r} not found: give FFHQ's ffhq-dataset-v2.json or "
                              "{image path: 68 [x, y] points}")
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected a JSON object keyed by image")
    faces = {}
    for name, value in entries.items():
        if isinstance(value, dict) and "in_the_wild" in value:
            name, value = value["in_the_wild"]["file_path"], value["in_the_wild"]["face_landmarks"]
        faces[name] = five_points(value)
    return sorted(faces.items())


def face_quad(points: np.ndarray, shape: tuple[int, int], below: float = 1.0):
    """(crop corners [4, 2] as top-left, bottom-left, bottom-right, top-right; face square corners)."""
    eye_left, eye_right, mouth_left, mouth_right = points
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x = x / np.hypot(*x) * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    centre = eye_avg + eye_to_mouth * 0.1
    square = np.array([centre - x - y, centre - x + y, centre + x + y, centre + x - y])
    half = np.hypot(*x)
    right, down = x / half, y / half
    height = 2 * half * (1 + below)
    width = height * shape[1] / shape[0]
    top_left = centre - half * down - width / 2 * right
    crop = np.array([top_left, top_left + height * down, top_left + height * down + width * right,
                     top_left + width * right])
    return crop, square


def quad_inside(quad: np.ndarray, image_size: tuple[int, int], tolerance: float = 1e-6) -> bool:
    width, height = image_size
    return bool(np.all(quad >= -tolerance) and np.all(quad[:, 0] <= width + tolerance)
                and np.all(quad[:, 1] <= height + tolerance))


def crop_quad(image: Image.Image, quad: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Maps quad (top-left, bottom-left, bottom-right, top-right) onto a uint8 [H, W, 3] image.

    A crop much larger than the target is first shrunk by an integer box filter (PIL reduce), so
    the bicubic quad sampling does not alias."""
    target_height, target_width = shape
    crop_height = np.hypot(*(quad[1] - quad[0]))
    shrink = int(np.floor(crop_height / target_height / 2))
    if shrink > 1:
        image = image.reduce(shrink)
        quad = quad / shrink
    warped = image.transform((target_width, target_height), Image.Transform.QUAD,
                             data=tuple(float(v) for v in quad.reshape(-1)), resample=Image.Resampling.BICUBIC)
    return np.asarray(warped, dtype=np.uint8)
