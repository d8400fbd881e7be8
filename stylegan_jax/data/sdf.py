"""Batched signed-distance shapes and anti-aliased painting in pure numpy.

Every shape returns a signed distance d (negative inside, in the same units as the coordinates)
for a whole batch at once: coordinates broadcast as [1, H, W] grids against per-image parameters
shaped [B, 1, 1]. Anti-aliasing is analytic: a pixel of size `px` is covered by
clip(0.5 - d / px, 0, 1), a linear ramp one pixel wide across the edge, which is what averaging many
sub-samples would give for a straight edge -- so no supersampling is needed. Distances of
ellipses are first-order estimates (exact on the boundary), which is all the ramp needs.
"""
import numpy as np


def column(values):
    """Per-image scalars [B] -> [B, 1, 1] for broadcasting against [1, H, W] grids."""
    return np.asarray(values, np.float32)[:, None, None]


def ellipse(x, y, rx, ry):
    """Ellipse centred at the origin of (x, y) with radii rx, ry."""
    qx, qy = x / rx, y / ry
    level = np.sqrt(qx * qx + qy * qy)
    # d ~= (level - 1) / |grad level|, the first-order distance to the level-1 curve.
    gradient = np.sqrt((qx / rx) ** 2 + (qy / ry) ** 2) / np.maximum(level, 1e-6)
    return (level - 1.0) / np.maximum(gradient, 1e-6)


def rounded_box(x, y, half_w, half_h, radius):
    """Axis-aligned box centred at the origin, corners rounded by `radius` (<= the half sizes)."""
    qx = np.abs(x) - half_w + radius
    qy = np.abs(y) - half_h + radius
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0.0) - radius


def ring(x, y, radius, thickness):
    """Circular band of the given thickness around a circle of `radius` at the origin."""
    return np.abs(np.sqrt(x * x + y * y) - radius) - 0.5 * thickness


def intersect(*distances):
    return np.maximum.reduce(distances)


def union(*distances):
    return np.minimum.reduce(distances)


def subtract(distance, removed):
    return np.maximum(distance, -removed)


def coverage(distance, px):
    """Fraction of each pixel (of size px) inside the shape: the anti-aliasing ramp."""
    return np.clip(0.5 - distance / px, 0.0, 1.0).astype(np.float32)


def paint(canvas, color, alpha):
    """In place: canvas [B,H,W,3] <- lerp toward color by alpha ([B,H,W] or [B,1,1]).

    color: [3] (one for all), [B, 3] (one per image) or [B, H, W, 3] (per pixel)."""
    color = np.asarray(color, np.float32)
    color = color[:, None, None, :] if color.ndim == 2 else color
    alpha = np.asarray(alpha, np.float32)[..., None]
    canvas += alpha * (color - canvas)
    return canvas


def bounding_boxes(mask):
    """Normalised [ymin, xmin, ymax, xmax] of mask [B,H,W] (bool); zeros where a mask is empty."""
    _, height, width = mask.shape
    rows, cols = mask.any(axis=2), mask.any(axis=1)
    present = rows.any(axis=1)
    ymin = np.argmax(rows, axis=1)
    ymax = height - np.argmax(rows[:, ::-1], axis=1)
    xmin = np.argmax(cols, axis=1)
    xmax = width - np.argmax(cols[:, ::-1], axis=1)
    boxes = np.stack([ymin / height, xmin / width, ymax / height, xmax / width], axis=1)
    return np.where(present[:, None], boxes, 0.0).astype(np.float32)
