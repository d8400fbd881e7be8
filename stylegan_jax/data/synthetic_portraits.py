"""Procedurally drawn anime-style portraits with labels and boxes (pure numpy, batched).

The embedded default dataset: it has what the real (Danbooru-style) data has -- a 2:1 height:width
framing with the face in the upper half and neck and clothes below, hair of several colours, lengths
and fringe shapes, big anime eyes of several iris colours, an open or closed mouth and an optional
hairband -- plus exact labels and face/eye/mouth boxes, the facts an anime-face detector reports.

Coordinates are in units of the image width: u in [0, 1] left to right, v in [0, 2] top to bottom,
so one set of shape parameters draws the same portrait at every size. Example `index` of `seed`
always gives the same parameters (its own random stream), so any subset can be drawn in any order.
"""
import numpy as np

from stylegan_jax.data import sdf
from stylegan_jax.data.labels import LabelSpec

HAIR_COLORS = {
    "black": (0.13, 0.12, 0.16), "brown": (0.45, 0.27, 0.14), "blonde": (0.96, 0.83, 0.42),
    "red": (0.80, 0.15, 0.13), "blue": (0.22, 0.40, 0.88), "pink": (0.97, 0.55, 0.74),
}
EYE_COLORS = {
    "blue": (0.10, 0.42, 0.98), "green": (0.10, 0.72, 0.25), "red": (0.90, 0.10, 0.12),
    "purple": (0.58, 0.22, 0.85), "gold": (0.98, 0.74, 0.05),
}
HAIRBAND_COLORS = ((0.92, 0.12, 0.20), (0.98, 0.98, 0.98), (0.10, 0.10, 0.12), (0.20, 0.75, 0.95))
HAIR_LENGTHS = ("short", "medium", "long")
FRINGES = ("straight", "spiky", "swept", "parted")
LABEL_SPEC = LabelSpec({
    "hair_color": tuple(HAIR_COLORS), "eye_color": tuple(EYE_COLORS),
    "mouth_open": ("0", "1"), "hairband": ("0", "1"),
})
BOX_NAMES = ("face", "left_eye", "right_eye", "mouth")
HAIRBAND_PROBABILITY = 0.3
MIN_WIDTH, MAX_WIDTH = 32, 256

_SKIN = np.array([1.0, 0.87, 0.77], np.float32)
_DARK_LINE = np.array([0.18, 0.10, 0.10], np.float32)
_MOUTH_INSIDE = np.array([0.30, 0.04, 0.08], np.float32)
_TONGUE = np.array([0.93, 0.45, 0.50], np.float32)
_CLOSED_MOUTH = np.array([0.70, 0.40, 0.40], np.float32)
_BLUSH = np.array([1.0, 0.55, 0.60], np.float32)


def check_shape(shape):
    """Validates (H, W): 2:1 framing, W a size between MIN_WIDTH and MAX_WIDTH."""
    height, width = (int(s) for s in shape)
    if height != 2 * width or not MIN_WIDTH <= width <= MAX_WIDTH:
        raise ValueError(f"synthetic portraits are drawn at H = 2 W with W in [{MIN_WIDTH}, "
                         f"{MAX_WIDTH}] (64x32 .. 512x256), got {height}x{width}")
    return height, width


def sample_params(seed, index, **overrides):
    """Random parameters of portrait `index` of `seed`; `overrides` replace named ones (a twin).

    Every parameter is always drawn, in a fixed order, so overriding one (say hairband=1) leaves
    all others -- including the hairband's colour -- unchanged.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    hair = int(rng.integers(len(HAIR_COLORS)))
    params = {
        "hair_color": hair,
        "eye_color": int(rng.integers(len(EYE_COLORS))),
        "mouth_open": int(rng.random() < 0.5),
        "hairband": int(rng.random() < HAIRBAND_PROBABILITY),
        "hair_length": int(rng.integers(len(HAIR_LENGTHS))),
        "fringe": int(rng.integers(len(FRINGES))),
        "center_x": 0.5 + rng.uniform(-0.04, 0.04),
        "center_y": 0.66 + rng.uniform(-0.05, 0.05),
        "scale": rng.uniform(1.0, 1.16),
        "tilt": np.deg2rad(rng.uniform(-7.0, 7.0)),
        "skin": _SKIN * rng.uniform(0.92, 1.02) + rng.uniform(-0.02, 0.02, 3),
        "hair_rgb": np.asarray(list(HAIR_COLORS.values())[hair]) * rng.uniform(0.9, 1.08)
                    + rng.uniform(-0.04, 0.04, 3),
        "eye_jitter": rng.uniform(-0.04, 0.04, 3),
        "background_top": rng.uniform(0.70, 0.97, 3),
        "background_bottom": rng.uniform(0.55, 0.92, 3),
        "clothes_rgb": rng.uniform(0.08, 0.90, 3),
        "band_choice": int(rng.integers(len(HAIRBAND_COLORS))),
        "eye_size": rng.uniform(0.93, 1.08),
        "mouth_size": rng.uniform(0.9, 1.15),
        "fringe_flip": float(rng.choice([-1.0, 1.0])),
        "blush": rng.uniform(0.0, 0.35),
    }
    unknown = set(overrides) - set(params)
    if unknown:
        raise ValueError(f"unknown portrait parameters {sorted(unknown)}: choose from {sorted(params)}")
    params.update(overrides)
    # A hairband must stand out from the hair: take the first palette colour far enough from it.
    for step in range(len(HAIRBAND_COLORS)):
        band = np.asarray(HAIRBAND_COLORS[(params["band_choice"] + step) % len(HAIRBAND_COLORS)])
        if np.abs(band - params["hair_rgb"]).sum() > 0.6:
            break
    params["band_rgb"] = band
    return params


def labels_of(params):
    """Attribute dict {name: class name} of one parameter set."""
    return {"hair_color": LABEL_SPEC.classes("hair_color")[params["hair_color"]],
            "eye_color": LABEL_SPEC.classes("eye_color")[params["eye_color"]],
            "mouth_open": str(params["mouth_open"]), "hairband": str(params["hairband"])}


def _stack(params_list, name):
    return np.stack([np.asarray(p[name], np.float32) for p in params_list])


def _fringe_bottom(x, p, s):
    """v-offset (from the head centre) of the fringe's lower edge at head-local x, per fringe shape."""
    t = x / (0.30 * s)  # -1 .. 1 across the face
    saw = np.abs(((t * 1.75 + 0.5) % 1.0) - 0.5) * 2.0  # 0 at tips, 1 between them
    shapes = [
        -0.11 * s + 0.0 * t,                               # straight, blunt bangs
        (-0.16 + 0.09 * (1.0 - saw)) * s,                  # spiky: strands pointing down
        (-0.13 + 0.06 * p["fringe_flip"] * t) * s,         # swept to one side
        (-0.21 + 0.10 * np.minimum(np.abs(t), 1.0)) * s,   # parted in the middle (curtain)
    ]
    return np.select([p["fringe"] == k for k in range(len(FRINGES))], shapes)


def _iris_colors(params_list, jitter):
    palette = np.asarray(list(EYE_COLORS.values()), np.float32)
    return np.clip(palette[[int(q["eye_color"]) for q in params_list]] + jitter, 0, 1)


def _draw_eyes(canvas, x, y, s, p, iris_rgb, px):
    """Sclera, an iris darker at the top, pupil, highlight and a thick upper lash line, per eye.

    Returns the [B,H,W] masks of the image-left and image-right eye (sclera plus lashes)."""
    eye_masks = []
    es = s * p["eye_size"]
    for side in (-1.0, 1.0):  # image-left eye first
        ex, ey = x - side * 0.135 * s, y - 0.05 * s
        sclera = sdf.ellipse(ex, ey, 0.085 * es, 0.10 * es)
        sclera_cov = sdf.coverage(sclera, px)
        sdf.paint(canvas, (1.0, 1.0, 1.0), sclera_cov)
        iris_cov = np.minimum(sdf.coverage(sdf.ellipse(ex, ey - 0.012 * es, 0.066 * es, 0.09 * es), px),
                              sclera_cov)
        shade = np.clip(0.55 + 0.45 * (ey / (0.09 * es) + 1.0) / 2.0, 0.0, 1.0)[..., None]
        sdf.paint(canvas, np.clip(iris_rgb[:, None, None, :] * (0.55 + 0.55 * shade), 0, 1), iris_cov)
        pupil = sdf.ellipse(ex, ey - 0.005 * es, 0.026 * es, 0.045 * es)
        sdf.paint(canvas, iris_rgb * 0.25, np.minimum(sdf.coverage(pupil, px), sclera_cov))
        glint = sdf.ellipse(ex + 0.022 * es, ey + 0.035 * es, 0.018 * es, 0.02 * es)
        sdf.paint(canvas, (1.0, 1.0, 1.0), sdf.coverage(glint, px) * 0.95)
        lash = sdf.intersect(sdf.subtract(sdf.ellipse(ex, ey + 0.01 * es, 0.10 * es, 0.125 * es), sclera),
                             ey + 0.045 * es)
        lash_cov = sdf.coverage(lash, px)
        sdf.paint(canvas, _DARK_LINE, lash_cov)
        eye_masks.append(np.maximum(sclera_cov, lash_cov) >= 0.5)
    return eye_masks


def _draw_mouth(canvas, x, y, s, p, px):
    """An open "D" shape with a tongue, or a closed gentle smile line; returns the mouth's mask."""
    ms = s * p["mouth_size"]
    mx, my = x, y - 0.245 * s
    open_mouth = sdf.intersect(sdf.ellipse(mx, my + 0.015 * ms, 0.066 * ms, 0.072 * ms), -(my + 0.015 * ms))
    open_cov = sdf.coverage(open_mouth, px) * p["mouth_open"]
    sdf.paint(canvas, _MOUTH_INSIDE, open_cov)
    tongue = sdf.ellipse(mx, my - 0.05 * ms, 0.036 * ms, 0.02 * ms)
    sdf.paint(canvas, _TONGUE, np.minimum(sdf.coverage(tongue, px), open_cov))
    line_half_thickness = np.float32(max(0.008, 0.5 * px))  # >= 1 px: visible, and boxed
    smile = sdf.rounded_box(mx, my - 3.0 * mx * mx, 0.045 * ms, line_half_thickness, line_half_thickness)
    closed_cov = sdf.coverage(smile, px) * (1.0 - p["mouth_open"])
    sdf.paint(canvas, _CLOSED_MOUTH, closed_cov)
    return np.maximum(open_cov, closed_cov) >= 0.5


def render(params_list, shape):
    """Draws portraits. Returns (images uint8 [B,H,W,3], boxes float32 [B, 4 boxes, 4])."""
    height, width = check_shape(shape)
    p = {name: sdf.column(_stack(params_list, name)) for name in
         ("hair_color", "eye_color", "mouth_open", "hairband", "hair_length", "fringe", "center_x",
          "center_y", "scale", "tilt", "eye_size", "mouth_size", "fringe_flip", "blush")}
    rgb = {name: _stack(params_list, name) for name in
           ("skin", "hair_rgb", "eye_jitter", "background_top", "background_bottom", "clothes_rgb",
            "band_rgb")}
    px = 1.0 / width
    u = ((np.arange(width, dtype=np.float32) + 0.5) * px)[None, None, :]
    v = ((np.arange(height, dtype=np.float32) + 0.5) * px)[None, :, None]
    s = p["scale"]
    # Head-local coordinates: origin at the face centre, tilted with the head.
    cos, sin = np.cos(p["tilt"]), np.sin(p["tilt"])
    du, dv = u - p["center_x"], v - p["center_y"]
    x, y = cos * du + sin * dv, -sin * du + cos * dv

    t = v / 2.0
    canvas = (rgb["background_top"][:, None, None, :] * (1 - t[..., None])
              + rgb["background_bottom"][:, None, None, :] * t[..., None])
    canvas = np.broadcast_to(canvas, (len(params_list), height, width, 3)).astype(np.float32)

    # Hair behind the head: a cap around the skull and, for longer hair, a curtain down the back
    # that widens as it falls over the shoulders.
    length_end = np.select([p["hair_length"] == k for k in range(3)],
                           np.float32([0.10, 0.55, 1.00])) * s  # float32: no float64 upcast
    cap_y, cap_r = -0.07 * s, 0.375 * s
    cap = sdf.ellipse(x, y - cap_y, cap_r * 1.02, cap_r)
    hair_rgb = rgb["hair_rgb"]
    back_half_h = 0.5 * (length_end - cap_y)
    flare = 1.0 + 0.35 * np.clip(y / np.maximum(length_end, 1e-3), 0.0, 1.0)
    back = sdf.rounded_box(x / flare, y - (cap_y + back_half_h), cap_r * 0.98, back_half_h, 0.12 * s)
    sdf.paint(canvas, hair_rgb * 0.78, sdf.coverage(sdf.union(cap, back), px))

    # Neck and clothes in the lower half (upright: they do not tilt with the head).
    body_x, body_y = u - p["center_x"], v - p["center_y"]
    neck = sdf.rounded_box(body_x, body_y - 0.45 * s, 0.085 * s, 0.25 * s, 0.03 * s)
    sdf.paint(canvas, rgb["skin"] * 0.88, sdf.coverage(neck, px))
    shoulders = sdf.ellipse(body_x, body_y - 1.12 * s, 0.62, 0.56 * s)
    neckline = sdf.ellipse(body_x, body_y - 0.58 * s, 0.10 * s, 0.10 * s)
    sdf.paint(canvas, rgb["clothes_rgb"], sdf.coverage(sdf.subtract(shoulders, neckline), px))

    # Face: an ellipse narrowing below its centre into an anime chin.
    face_rx, face_ry = 0.30 * s, 0.36 * s
    taper = 1.0 - 0.38 * np.clip(y / face_ry, 0.0, 1.0) ** 1.5
    face = sdf.ellipse(x / taper, y, face_rx, face_ry)
    face_mask = sdf.coverage(face, px)
    sdf.paint(canvas, rgb["skin"], face_mask)
    for side in (-1.0, 1.0):
        cheek = sdf.ellipse(x - side * 0.17 * s, y - 0.17 * s, 0.06 * s, 0.03 * s)
        sdf.paint(canvas, _BLUSH, sdf.coverage(cheek, px) * p["blush"])

    eye_masks = _draw_eyes(canvas, x, y, s, p, _iris_colors(params_list, rgb["eye_jitter"]), px)
    mouth_mask = _draw_mouth(canvas, x, y, s, p, px)

    # Hair in front: the fringe (inside the cap, above its lower edge) and side locks framing the face.
    fringe = sdf.intersect(cap, y - (_fringe_bottom(x, p, s)))
    # Side locks run from the temples to the hair's length, tapering to a point at the end.
    lock_top = -0.12 * s
    lock_half_h = 0.5 * (length_end + 0.06 * s - lock_top)
    lock_taper = 1.0 - 0.7 * np.clip((y - (length_end - 0.12 * s)) / (0.18 * s), 0.0, 1.0)
    locks = [sdf.rounded_box((x - side * 0.30 * s) / lock_taper, y - (lock_top + lock_half_h),
                             0.07 * s, lock_half_h, 0.05 * s) for side in (-1.0, 1.0)]
    front = sdf.union(fringe, *locks)
    sdf.paint(canvas, hair_rgb, sdf.coverage(front, px))
    # The anime "angel ring": a light band on the crown of the hair.
    shine = sdf.intersect(sdf.ring(x, y - cap_y, 0.25 * s, 0.035 * s), y + 0.26 * s, fringe)
    sdf.paint(canvas, (1.0, 1.0, 1.0), sdf.coverage(shine, px) * 0.35)

    # Hairband: a coloured band over the top of the head, drawn on the hair.
    band = sdf.intersect(sdf.ring(x, y - cap_y, 0.30 * s, 0.055 * s), y - (cap_y - 0.11 * s))
    sdf.paint(canvas, rgb["band_rgb"], sdf.coverage(band, px) * p["hairband"])

    images = np.clip(np.round(canvas * 255.0), 0, 255).astype(np.uint8)
    masks = [face_mask >= 0.5, *eye_masks, mouth_mask]
    boxes = np.stack([sdf.bounding_boxes(m) for m in masks], axis=1)
    return images, boxes


def generate(seed, indices, shape, **overrides):
    """Portraits `indices` of `seed` at `shape` (H, W) with their labels and boxes.

    Returns {"image": uint8 [B,H,W,3], "label": float32 [B, LABEL_SPEC.dim],
    "attributes": list of {attribute: class}, "boxes": float32 [B, 4, 4] ordered as BOX_NAMES,
    each [ymin, xmin, ymax, xmax] in [0, 1]}. `overrides` force parameters (e.g. hairband=0).
    """
    params_list = [sample_params(seed, index, **overrides) for index in indices]
    images, boxes = render(params_list, shape)
    attributes = [labels_of(params) for params in params_list]
    labels = np.stack([LABEL_SPEC.encode(a) for a in attributes]) if attributes else np.zeros(
        [0, LABEL_SPEC.dim], np.float32)
    return {"image": images, "label": labels, "attributes": attributes, "boxes": boxes}


def twin(seed, index, shape, **overrides):
    """Portrait `index` drawn twice: as sampled and with `overrides` -- everything else identical."""
    return generate(seed, [index], shape), generate(seed, [index], shape, **overrides)
