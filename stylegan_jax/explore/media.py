"""Saving what the explorer makes: PNGs that remember their w, GIF/MP4 animations, batch sweeps.

PNG metadata: a text chunk "stylegan_jax" holds JSON {"w": {"shape", "float32_base64"}, "recipe",
"settings"}; the w is the exact float32 bytes, so loading the PNG restores the same image.
Every file is written to a temporary name in the same folder and renamed (atomic); a sweep refuses
a folder that already holds one (nothing is overwritten).
"""
import base64
import dataclasses
import io
import itertools
import json
import os
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, PngImagePlugin
from tqdm import tqdm

from stylegan_jax.atomic import atomic_write, write_json_atomically
from stylegan_jax.explore.latent import Direction, apply_directions, lerp_w, slerp_z
from stylegan_jax.explore.recipe import Recipe, apply_recipe
from stylegan_jax.utils import parse_json, tile, to_uint8

METADATA_KEY = "stylegan_jax"
MAX_PNG_PIXELS = 4096 * 4096  # a PNG to load; larger ones are refused before decoding
MP4_PINS = "imageio==2.38.1 imageio-ffmpeg==0.8.1"


def _uint8(image) -> np.ndarray:
    image = np.asarray(image)
    return image if image.dtype == np.uint8 else to_uint8(image)


def encode_w(w) -> Dict[str, Any]:
    """w as JSON: shape and base64 of its float32 bytes (exact)."""
    w = np.ascontiguousarray(np.asarray(w, "<f4"))
    return {"shape": list(w.shape), "float32_base64": base64.b64encode(w.tobytes()).decode("ascii")}


def decode_w(obj: Dict[str, Any]) -> np.ndarray:
    """The inverse of encode_w; ValueError when malformed."""
    try:
        w = np.frombuffer(base64.b64decode(obj["float32_base64"], validate=True), "<f4")
        return w.reshape(obj["shape"]).astype(np.float32)
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"malformed w in image metadata ({type(e).__name__})") from None


def save_png(path: str, image, *, w=None, recipe: Optional[Recipe] = None,
             settings: Optional[Dict[str, Any]] = None) -> str:
    """Writes image ([-1, 1] float or uint8, [H, W, 3]) with w / recipe / settings as metadata."""
    meta = {"w": None if w is None else encode_w(w),
            "recipe": None if recipe is None else recipe.to_json(), "settings": settings or {}}
    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, json.dumps(meta))
    image = _uint8(image)
    return atomic_write(path, lambda p: Image.fromarray(image).save(p, format="PNG", pnginfo=info))


def load_png(source, *, explorer=None, read_recipe=None) -> Dict[str, Any]:
    """{"image": uint8 [H, W, 3], "w": float32 array or None, "recipe": Recipe or None,
    "settings": dict} from a PNG path or bytes (an image without metadata gives None's).

    Images of more than MAX_PNG_PIXELS are refused before they are decoded; the metadata is
    parsed strictly (utils.parse_json) and must be an object. The recipe is read by
    `read_recipe(json)` (default: Recipe.from_json, checked against `explorer` when given)."""
    data = source if isinstance(source, (bytes, bytearray)) else None
    if data is None and not os.path.isfile(source):
        raise FileNotFoundError(f"no image at {source}")
    try:
        with Image.open(io.BytesIO(data) if data is not None else source) as im:
            if im.width * im.height > MAX_PNG_PIXELS:
                raise ValueError(_too_large(im.width, im.height))
            image = np.asarray(im.convert("RGB"))
            text = im.info.get(METADATA_KEY)
    except Image.DecompressionBombError:  # over twice PIL's own limit, refused while opening
        raise ValueError(_too_large()) from None
    except OSError:
        raise ValueError("not a readable image: drop a PNG saved by the explorer") from None
    if text is None:
        return {"image": image, "w": None, "recipe": None, "settings": {}}
    meta = parse_json(text, "the image's explorer metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("settings", {}), dict):
        raise ValueError("the image's explorer metadata must be an object {w, recipe, settings}")
    if read_recipe is None:
        read_recipe = lambda obj: Recipe.from_json(obj, explorer)  # noqa: E731
    return {"image": image, "w": None if meta.get("w") is None else decode_w(meta["w"]),
            "recipe": None if meta.get("recipe") is None else read_recipe(meta["recipe"]),
            "settings": meta.get("settings", {})}


def _too_large(width=None, height=None) -> str:
    size = "" if width is None else f" ({width}x{height})"
    return (f"the image{size} has more than {MAX_PNG_PIXELS} pixels: load a PNG saved by the "
            f"explorer")


def feature_map_colors(features, scale: Optional[float] = None) -> np.ndarray:
    """Feature maps [h, w, c] as uint8 pictures [c, h, w, 3]:
    white at 0, toward green for positive and red for negative values, saturating at +-scale
    (default: the largest |value|, so maps of one layer share one scale)."""
    features = np.asarray(features, np.float32)
    if features.ndim != 3:
        raise ValueError(f"feature maps must be [h, w, c], got shape {list(features.shape)}")
    scale = float(np.abs(features).max()) if scale is None else float(scale)
    a = np.clip(np.abs(features) / max(scale, 1e-12), 0, 1).transpose(2, 0, 1)[..., None]
    positive = (features >= 0).transpose(2, 0, 1)[..., None]
    fade = np.where(positive, [1.0, 0.0, 1.0], [0.0, 1.0, 1.0])  # channels that fade to 0
    return np.rint(255 * (1 - a * fade)).astype(np.uint8)


def _enlarge(frames: np.ndarray, scale: int) -> np.ndarray:
    return frames if scale <= 1 else frames.repeat(scale, axis=1).repeat(scale, axis=2)


def save_gif(path: str, frames, *, fps: float = 12.0, scale: int = 1) -> str:
    """Writes frames [T, H, W, 3] ([-1, 1] float or uint8) as a looping GIF, enlarged by `scale`.
    PIL's encoder stores a run of identical frames once, shown for the run's total duration (a
    hold plays as long as it would frame by frame; a decoder then counts fewer frames)."""
    frames = _enlarge(_uint8(frames), scale)
    images = [Image.fromarray(f) for f in frames]
    return atomic_write(path, lambda p: images[0].save(
        p, format="GIF", save_all=True, append_images=images[1:], duration=int(round(1000 / fps)),
        loop=0))


def save_mp4(path: str, frames, *, fps: float = 24.0, scale: int = 1) -> str:
    """Writes frames as an H.264 MP4 (needs imageio and imageio-ffmpeg). Sides are padded to a
    multiple of 16 (the codec's block size) with edge pixels."""
    try:
        import imageio.v2 as imageio  # pylint: disable=import-outside-toplevel
        import imageio_ffmpeg  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        raise RuntimeError(f"MP4 export needs imageio and imageio-ffmpeg: pip install {MP4_PINS} "
                           f"(or export a GIF)") from None
    frames = _enlarge(_uint8(frames), scale)
    pad_h, pad_w = -frames.shape[1] % 16, -frames.shape[2] % 16
    frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return atomic_write(path, lambda p: imageio.mimwrite(p, list(frames), format="FFMPEG", fps=fps,
                                                          codec="libx264", macro_block_size=16))


# ------------------------------------------------------------------------------- sweeps

def _new_folder(out_dir: str) -> str:
    if os.path.exists(os.path.join(out_dir, "settings.json")):
        raise ValueError(f"{out_dir} already holds a sweep: choose a new folder")
    os.makedirs(out_dir, exist_ok=True)
    return out_dir


def _write_settings(out_dir: str, settings: Dict[str, Any]) -> str:
    return write_json_atomically(os.path.join(out_dir, "settings.json"), settings)


def _save_frames(out_dir, images, ws, recipe=None, settings=None, prefix="frame"):
    for i, image in enumerate(tqdm(images, desc=f"writing {prefix}s", leave=False)):
        save_png(os.path.join(out_dir, f"{prefix}_{i:04d}.png"), image, w=ws[i], recipe=recipe,
                 settings=settings)


def seed_amount_grid(explorer, recipe: Recipe, seeds: Sequence[int], amounts: Sequence[float],
                     out_dir: str, *, psi: float = 1.0) -> np.ndarray:
    """Rows = seeds, columns = amount scales of the recipe; writes grid.png, one PNG per cell and
    settings.json. Returns the grid's cells, uint8 [len(seeds), len(amounts), H, W, 3]."""
    _new_folder(out_dir)
    w = explorer.w_from_seeds(seeds, psi=psi)
    cells = np.stack([apply_recipe(explorer, recipe, w, amount_scale=amount)[0].uint8
                      for amount in tqdm(amounts, desc="amounts")], axis=1)
    # Like the explorer's PNG export: the w before the recipe, plus the recipe and its scale.
    for (i, seed), (j, amount) in itertools.product(enumerate(seeds), enumerate(amounts)):
        save_png(os.path.join(out_dir, f"seed{seed}_amount{j:02d}.png"), cells[i, j], w=w[i],
                 recipe=recipe, settings={"seed": int(seed), "amount_scale": float(amount)})
    grid = tile(cells.reshape(-1, *cells.shape[2:]), len(seeds), len(amounts))
    save_png(os.path.join(out_dir, "grid.png"), grid, recipe=recipe)
    _write_settings(out_dir, {"kind": "seed_amount_grid", "seeds": [int(s) for s in seeds],
                              "amounts": [float(a) for a in amounts], "psi": float(psi),
                              "recipe": recipe.to_json(), "model": explorer.provenance})
    return cells


def attribute_spectrum(explorer, direction: Direction, seed: int, strengths: Sequence[float],
                       out_dir: str, *, psi: float = 1.0) -> np.ndarray:
    """One seed moved along a direction by each strength; frames + settings.json in out_dir."""
    _new_folder(out_dir)
    w = explorer.w_from_seeds([seed], psi=psi)
    ws = np.concatenate([apply_directions(w, [direction], s) for s in strengths])
    images = explorer.synthesize(ws).uint8
    _save_frames(out_dir, images, ws)
    _write_settings(out_dir, {"kind": "attribute_spectrum", "seed": int(seed), "psi": float(psi),
                              "strengths": [float(s) for s in strengths],
                              "direction": direction.to_json(), "model": explorer.provenance})
    return images


def interpolation_frames(explorer, seeds: Sequence[int], num_frames: int,
                         out_dir: Optional[str] = None, *, space: str = "w", psi: float = 1.0,
                         center=None, label=None, recipe: Optional[Recipe] = None,
                         noise_mode: Optional[str] = None, chunk: Optional[int] = None,
                         progress: Optional[Callable] = None) -> Tuple[np.ndarray, np.ndarray]:
    """A walk through the seeds' latents (lerp in W or slerp in Z), num_frames per leg, each
    frame's w edited by `recipe` when given; written as frames + settings.json when out_dir is
    given. Returns (uint8 frames, their w before the recipe).

    psi truncates toward `center` (a w; None = the average w); label: a conditional model's
    label vector for every seed. chunk: synthesize this many frames per call (the explorer pads
    batches to a few fixed sizes, so one program serves all), calling progress(frames done,
    total) after each; None = all at once."""
    if space not in ("w", "z"):
        raise ValueError(f"unknown interpolation space {space!r}: choose 'w' or 'z'")
    if len(seeds) < 2 or num_frames < 2:
        raise ValueError("an interpolation needs at least two seeds and two frames per leg")
    labels_of = (lambda n: None) if label is None else (
        lambda n: np.repeat(np.asarray(label, np.float32)[None], n, axis=0))
    t = np.linspace(0, 1, num_frames, endpoint=False, dtype=np.float32)
    if space == "z":
        z = explorer.z_from_seeds(seeds)
        zs = np.concatenate([slerp_z(z[i], z[i + 1], t) for i in range(len(seeds) - 1)] + [z[-1:]])
        ws = explorer.mapping(zs, labels_of(len(zs)))
        ws = ws if psi == 1.0 else explorer.truncate(ws, psi, center)
    else:
        w = explorer.w_from_seeds(seeds, psi=psi, center=center, labels=labels_of(len(seeds)))
        ws = np.concatenate([lerp_w(w[i], w[i + 1], t) for i in range(len(seeds) - 1)] + [w[-1:]])
    recipe = Recipe() if recipe is None else recipe
    step = len(ws) if chunk is None else int(chunk)
    images = []
    for start in range(0, len(ws), step):  # (the explorer pads the last, shorter part)
        part = ws[start:start + step]
        rendering, _ = apply_recipe(explorer, recipe, part, noise_mode=noise_mode)
        images.append(rendering.uint8)
        if progress is not None:
            progress(start + len(part), len(ws))
    images = np.concatenate(images)
    if out_dir is not None:
        _new_folder(out_dir)
        edited = recipe if recipe.edits or recipe.directions else None
        _save_frames(out_dir, images, ws, recipe=edited)
        _write_settings(out_dir, {"kind": "interpolation", "seeds": [int(s) for s in seeds],
                                  "frames_per_leg": int(num_frames), "space": space,
                                  "psi": float(psi), "model": explorer.provenance,
                                  "recipe": None if edited is None else edited.to_json()})
    return images, ws


def oscillation_frames(explorer, recipe: Recipe, w, num_frames: int = 24, *, low: float = 0.0,
                       high: float = 1.0, progress: Optional[Callable] = None,
                       only: Optional[str] = None) -> np.ndarray:
    """An edit's amount going low -> high -> low over num_frames (a talking mouth): uint8 frames.
    progress(frames done, total) is called after each frame when given. only: the name of the
    edits / directions that move; the rest of the recipe stays as it is (None: all of it moves)."""
    phase = np.arange(num_frames) / num_frames
    scales = low + (high - low) * 0.5 * (1 - np.cos(2 * np.pi * phase))
    w = explorer.check_w(w)[:1]
    frames = []
    for s in tqdm(scales, desc="frames", leave=False):
        if only is None:
            rendering, _ = apply_recipe(explorer, recipe, w, amount_scale=float(s))
        else:
            scaled = dataclasses.replace(
                recipe, edits=[e.with_amount(e.amount * s) if e.name == only else e
                               for e in recipe.edits],
                directions=[dataclasses.replace(d, strength=d.strength * s) if d.name == only
                            else d for d in recipe.directions])
            rendering, _ = apply_recipe(explorer, scaled, w)
        frames.append(rendering.uint8)
        if progress is not None:
            progress(len(frames), num_frames)
    return np.concatenate(frames)
