"""The explorer web API's endpoints: a request's JSON object in, a JSON-ready dict out.

Conventions (server.py routes POST /api/<name> to `Api.<name>`, GET /api/info to `Api.info`):

* A latent is {"seed": int, "psi": float} (psi defaults to 1) or {"w": media.encode_w(w)}; a
  render's own latent fields sit at the top level of its request, pairs are "a" and "b".
* A recipe is recipe.Recipe's JSON (object or string), checked against the model; absent = none.
* Masks and selections are 2-d lists at the layer's resolution (edits.py's conventions).
* Images come back as PNG data URLs; exports as {"filename", "mime", "data": data URL}.
* A bad request raises ValueError with a one-line message naming the field (HTTP 400); unknown
  fields are refused too, so a typo does not pass silently.
"""
import base64
import dataclasses
import io
import math
import os
import tempfile
import threading

import numpy as np
from PIL import Image

from stylegan_jax.explore import find, media
from stylegan_jax.explore.edits import PAINT_MODES, check_channel, format_channels, parse_channels
from stylegan_jax.explore.explorer import NOISE_MODES
from stylegan_jax.explore.latent import Direction, attribute_vector, lerp_w, slerp_z, style_mix
from stylegan_jax.explore.recipe import Recipe, apply_recipe, apply_to_seeds, parse_mask

MAX_SEEDS = 64       # images per gallery / seed grid request
MAX_FRAMES = 240     # frames per animation
SORTS = ("channel", "magnitude", "similarity")
LATENT = ("seed", "w", "psi")
_REQUIRED = object()


def png_data_url(image: np.ndarray) -> str:
    """uint8 [H, W, 3] -> "data:image/png;base64,..."."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def map_grid(colors: np.ndarray, order, gap: int = 1):
    """Feature-map pictures [c, h, w, 3] in `order`, tiled roughly square with grey gaps.
    Returns (uint8 grid, rows, cols)."""
    c, h, w, _ = colors.shape
    cols = max(1, min(c, math.ceil(math.sqrt(c * h / w))))
    rows = math.ceil(c / cols)
    grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 128, np.uint8)
    for i, channel in enumerate(order):
        y, x = (i // cols) * (h + gap), (i % cols) * (w + gap)
        grid[y:y + h, x:x + w] = colors[channel]
    return grid, rows, cols


class Body:
    """A request's JSON object; its getters raise one-line ValueErrors naming the field."""

    def __init__(self, obj, endpoint: str, allowed=()):
        if not isinstance(obj, dict):
            raise ValueError(f"{endpoint} expects a JSON object, got {type(obj).__name__}")
        unknown = sorted(set(obj) - set(allowed))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown} for {endpoint}: it takes "
                             f"{', '.join(allowed) or 'no fields'}")
        self.obj, self.endpoint = obj, endpoint

    def get(self, key, default=_REQUIRED):
        if key in self.obj and self.obj[key] is not None:
            return self.obj[key]
        if default is _REQUIRED:
            raise ValueError(f"{self.endpoint} needs the field {key!r}")
        return default

    def number(self, key, default=_REQUIRED, lo=-math.inf, hi=math.inf, kind=float):
        value = self.get(key, default)
        if value is None:
            return None
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        if not ok or (kind is int and value != int(value)) or not lo <= value <= hi:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"field {key!r} must be {what} in [{lo}, {hi}], got {value!r}")
        return kind(value)

    def text(self, key, default=_REQUIRED, choices=None):
        value = self.get(key, default)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"field {key!r} must be a string, got {type(value).__name__}")
        if choices is not None and value is not None and value not in choices:
            raise ValueError(f"field {key!r} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def seeds(self, key="seeds", lo=1):
        seeds = self.get(key)
        if (not isinstance(seeds, list) or not lo <= len(seeds) <= MAX_SEEDS
                or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32
                           for s in seeds)):
            raise ValueError(f"field {key!r} must be a list of {lo} to {MAX_SEEDS} integer seeds "
                             f"in [0, 2^32)")
        return seeds

    def mask(self, key, layer, default=None):
        mask = parse_mask(self.get(key, default), f"field {key!r}")
        if mask is None:
            return None
        if mask.shape != (layer.height, layer.width):
            raise ValueError(f"field {key!r} must be a {layer.height}x{layer.width} list of finite "
                             f"numbers (layer {layer.name}), got shape {list(mask.shape)}")
        return mask

    def part(self, key):
        """A nested latent object (e.g. "a")."""
        return Body(self.get(key), f"{self.endpoint}.{key}", LATENT)


class Api:
    """The endpoints on one Explorer; one lock serialises them (the explorer's cache is shared)."""

    def __init__(self, explorer):
        self.ex = explorer
        self.lock = threading.Lock()
        self.endpoints = {name: getattr(self, name) for name in (
            "gallery", "render", "channels", "propose", "direction", "interpolate", "mix",
            "apply_to_seeds", "recipe", "load_png", "export")}

    # ------------------------------------------------------------------ helpers
    def latent(self, b: Body, default_psi: float = 1.0) -> np.ndarray:
        """w [1, layers, dlatent] of a latent object (seed + psi, or w)."""
        if ("seed" in b.obj) == ("w" in b.obj):
            raise ValueError(f"{b.endpoint} needs exactly one of 'seed' or 'w'")
        if "w" in b.obj:
            if "psi" in b.obj:
                raise ValueError(f"{b.endpoint}: 'psi' goes with 'seed' ('w' is already truncated)")
            w = self.ex.check_w(media.decode_w(b.get("w")))
            if w.shape[0] != 1 or not np.all(np.isfinite(w)):
                raise ValueError(f"{b.endpoint}: 'w' must be one finite latent, got {list(w.shape)}")
            return w
        seed = b.number("seed", kind=int, lo=0, hi=2**32 - 1)
        return self.ex.w_from_seeds([seed], psi=b.number("psi", default_psi, lo=-2, hi=2))

    def recipe(self, obj):
        """POST /api/recipe {recipe}: the recipe validated against the model, normalised."""
        b = Body(obj, "recipe", ("recipe",))
        return {"recipe": self._recipe(b).to_json()}

    def _recipe(self, b: Body) -> Recipe:
        obj = b.get("recipe", None)
        return Recipe() if obj is None else Recipe.from_json(obj).check(self.ex)

    def _render(self, w, recipe: Recipe, noise_mode=None, layer=None):
        """(Rendering, w after the recipe's directions), with the features when `layer` is given."""
        return apply_recipe(self.ex, recipe, w, noise_mode=noise_mode,
                            return_features=layer is not None)

    def _image_reply(self, w, b: Body):
        rendering, _ = self._render(w, self._recipe(b), self._noise(b))
        return {"image": png_data_url(rendering.uint8[0]), "w": media.encode_w(w)}

    @staticmethod
    def _noise(b: Body):
        return b.text("noise_mode", None, NOISE_MODES)

    # ------------------------------------------------------------------ endpoints
    def info(self, _obj=None):
        """GET /api/info: the model (Explorer.describe) and the API's choices and limits."""
        return dict(self.ex.describe(), paint_modes=list(PAINT_MODES), sorts=list(SORTS),
                    noise_modes=list(NOISE_MODES), max_seeds=MAX_SEEDS, max_frames=MAX_FRAMES)

    def gallery(self, obj):
        """{seeds, psi, noise_mode} -> {images}: random samples."""
        b = Body(obj, "gallery", ("seeds", "psi", "noise_mode"))
        w = self.ex.w_from_seeds(b.seeds(), psi=b.number("psi", 1.0, lo=-2, hi=2))
        images = self.ex.synthesize(w, noise_mode=self._noise(b)).uint8
        return {"images": [png_data_url(im) for im in images]}

    def render(self, obj):
        """{seed|w, psi, recipe, noise_mode, layer, selection, sort} -> {image, w, maps?}.

        With `layer`: "maps" holds that layer's (edited) feature maps as one grid PNG, the
        channel of each cell ("order", by `sort` within `selection`) and the sort's values."""
        b = Body(obj, "render", LATENT + ("recipe", "noise_mode", "layer", "selection", "sort"))
        w = self.latent(b)
        recipe, noise = self._recipe(b), self._noise(b)
        name = b.text("layer", None)
        layer = None if name is None else self.ex.layer(name)
        sort = b.text("sort", "channel", SORTS)
        selection = None if layer is None else b.mask("selection", layer)
        rendering, _ = self._render(w, recipe, noise, name)
        out = {"image": png_data_url(rendering.uint8[0]), "w": media.encode_w(w)}
        if layer is None:
            return out
        features = rendering.features[name][0]
        values = None
        if sort == "channel":
            order = list(range(layer.channels))
        else:
            if selection is None or not np.any(selection):
                if sort == "similarity":
                    raise ValueError("sorting by similarity needs a selection: paint a region first")
                selection = np.ones((layer.height, layer.width), np.float32)
            ranked = (find.sort_by_magnitude if sort == "magnitude" else find.sort_by_similarity)(
                features, selection)
            order, values = [c for c, _ in ranked], [v for _, v in ranked]
        grid, rows, cols = map_grid(media.feature_map_colors(features), order)
        out["maps"] = {"layer": dataclasses.asdict(layer), "grid": png_data_url(grid), "rows": rows,
                       "cols": cols, "gap": 1, "order": order, "values": values,
                       "scale": float(np.abs(features).max())}
        return out

    def channels(self, obj):
        """{layer, text, toggle?} -> {text, channels}: a channel list parsed (and a channel
        added or removed), written back in canonical form."""
        b = Body(obj, "channels", ("layer", "text", "toggle"))
        layer = self.ex.layer(b.text("layer"))
        channels = parse_channels(b.text("text", ""), layer.channels)
        toggle = b.number("toggle", None, kind=int, lo=-math.inf)
        if toggle is not None:
            check_channel(toggle, layer.channels)
            if channels.pop(toggle, None) is None:
                channels[toggle] = 1.0
        return {"text": format_channels(channels), "channels": sorted(channels.items())}

    def propose(self, obj):
        """{a, b, layer, mask_a, mask_b?, top_k, name, noise_mode} -> {edit}: find.propose_edit
        with a = the image WITH the attribute, b = without; the edit in recipe-JSON form."""
        b = Body(obj, "propose", ("a", "b", "layer", "mask_a", "mask_b", "top_k", "name",
                                  "noise_mode"))
        layer = self.ex.layer(b.text("layer"))
        mask_a = b.mask("mask_a", layer, _REQUIRED)
        mask_b = b.mask("mask_b", layer)
        noise = self._noise(b)
        renders = [self.ex.synthesize(self.latent(b.part(k)), return_features=True, noise_mode=noise)
                   for k in ("a", "b")]
        edit = find.propose_edit(layer.name, *(r.features[layer.name][0] for r in renders),
                                 mask_a, mask_b,
                                 top_k=b.number("top_k", 8, lo=1, hi=layer.channels, kind=int),
                                 name=b.text("name", "proposed"),
                                 images=[r.images[0] for r in renders])
        return {"edit": Recipe([edit]).to_json()["edits"][0]}

    def direction(self, obj):
        """{with: [latents], without: [latents], name, layers?} -> {direction}: an attribute
        vector (mean w with - mean w without) in recipe-JSON form, strength 1."""
        b = Body(obj, "direction", ("with", "without", "name", "layers"))
        groups = []
        for key in ("with", "without"):
            items = b.get(key)
            if not isinstance(items, list) or not 1 <= len(items) <= MAX_SEEDS:
                raise ValueError(f"field {key!r} must be a list of 1 to {MAX_SEEDS} latents")
            groups.append([self.latent(Body(x, f"direction.{key}[{i}]", LATENT))
                           for i, x in enumerate(items)])
        w = np.concatenate(groups[0] + groups[1])
        vector = attribute_vector(w, [True] * len(groups[0]) + [False] * len(groups[1]))
        layers = b.get("layers", None)
        spec = {"name": b.text("name", "direction"), "vector": vector.tolist(), "strength": 1.0,
                "layers": layers}
        direction = Direction.from_json(spec, "direction").check(self.ex.num_layers, self.ex.dlatent_size)
        return {"direction": direction.to_json()}

    def interpolate(self, obj):
        """{a, b, t, space: w|z, recipe?, noise_mode} -> {image, w}: lerp in W, or slerp in Z
        (needs two seeds; a's psi truncates)."""
        b = Body(obj, "interpolate", ("a", "b", "t", "space", "recipe", "noise_mode"))
        t = b.number("t", lo=0, hi=1)
        a, c = b.part("a"), b.part("b")
        if b.text("space", "w", ("w", "z")) == "z":
            if "seed" not in a.obj or "seed" not in c.obj:
                raise ValueError("interpolating in Z needs two seeds (a picked w has no z): use space 'w'")
            z = self.ex.z_from_seeds([x.number("seed", kind=int, lo=0, hi=2**32 - 1) for x in (a, c)])
            w = self.ex.mapping(slerp_z(z[0], z[1], t)[None])
            psi = a.number("psi", 1.0, lo=-2, hi=2)
            w = w if psi == 1.0 else self.ex.truncate(w, psi)
        else:
            w = lerp_w(self.latent(a), self.latent(c), t)
        return self._image_reply(w, b)

    def mix(self, obj):
        """{a, b, crossover, recipe?, noise_mode} -> {image, w}: layers < crossover from a
        (coarse styles), the rest from b."""
        b = Body(obj, "mix", ("a", "b", "crossover", "recipe", "noise_mode"))
        crossover = b.number("crossover", kind=int, lo=0, hi=self.ex.num_layers)
        w = style_mix(self.latent(b.part("a")), self.latent(b.part("b")), crossover)
        return self._image_reply(w, b)

    def apply_to_seeds(self, obj):
        """{recipe, seeds, psi, amount_scale, noise_mode} -> {images}: recipe.apply_to_seeds."""
        b = Body(obj, "apply_to_seeds", ("recipe", "seeds", "psi", "amount_scale", "noise_mode"))
        rendering, _ = apply_to_seeds(self.ex, self._recipe(b), b.seeds(),
                                      psi=b.number("psi", 1.0, lo=-2, hi=2),
                                      amount_scale=b.number("amount_scale", 1.0, lo=-100, hi=100),
                                      noise_mode=self._noise(b))
        return {"images": [png_data_url(im) for im in rendering.uint8]}

    def load_png(self, obj):
        """{data: PNG as base64 or data URL} -> {image, w, recipe, settings} (media.load_png)."""
        b = Body(obj, "load_png", ("data",))
        data = b.text("data")
        try:
            raw = base64.b64decode(data.split(",", 1)[1] if data.startswith("data:") else data,
                                   validate=True)
        except ValueError:
            raise ValueError("field 'data' must be a PNG as base64 or a data URL") from None
        loaded = media.load_png(raw)
        recipe = loaded["recipe"]
        if recipe is not None:
            recipe.check(self.ex)
        return {"image": png_data_url(loaded["image"]),
                "w": None if loaded["w"] is None else media.encode_w(self.ex.check_w(loaded["w"])[:1]),
                "recipe": None if recipe is None else recipe.to_json(), "settings": loaded["settings"]}

    def export(self, obj):
        """{kind: png|gif|mp4, ...} -> {filename, mime, data}.

        png: the rendered latent + recipe, with the latent's w (before the recipe) and the recipe
        in its metadata (media.save_png). gif/mp4: animation "oscillation" (the recipe's amount
        going low -> high -> low on the latent) or "interpolation" (a walk through `seeds`,
        `frames` per leg), at `fps`, enlarged `scale` times."""
        b = Body(obj, "export", LATENT + ("kind", "recipe", "noise_mode", "animation", "seeds",
                                          "space", "frames", "fps", "scale", "low", "high"))
        kind = b.text("kind", choices=("png", "gif", "mp4"))
        with tempfile.TemporaryDirectory(prefix="explorer_export_") as folder:
            if kind == "png":
                w, recipe, noise = self.latent(b), self._recipe(b), self._noise(b)
                rendering, _ = self._render(w, recipe, noise)
                settings = {"w": "before the recipe", "noise_mode": noise or self.ex.noise_mode}
                if "seed" in b.obj:
                    settings.update(seed=b.obj["seed"], psi=b.number("psi", 1.0))
                name = f"seed{b.obj['seed']}.png" if "seed" in b.obj else "image.png"
                path = media.save_png(os.path.join(folder, name), rendering.uint8[0], w=w[0],
                                      recipe=recipe, settings=settings)
                mime = "image/png"
            else:
                frames, name = self._frames(b)
                fps = b.number("fps", 12.0 if kind == "gif" else 24.0, lo=1, hi=60)
                scale = b.number("scale", 1, lo=1, hi=16, kind=int)
                path = os.path.join(folder, f"{name}.{kind}")
                if kind == "gif":
                    media.save_gif(path, frames, fps=fps, scale=scale)
                else:
                    try:
                        media.save_mp4(path, frames, fps=fps, scale=scale)
                    except RuntimeError as e:
                        if media.MP4_PINS not in str(e):
                            raise
                        raise ValueError(str(e)) from None  # imageio / imageio-ffmpeg missing
                mime = "image/gif" if kind == "gif" else "video/mp4"
            with open(path, "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
        return {"filename": os.path.basename(path), "mime": mime,
                "data": f"data:{mime};base64,{data}"}

    def _frames(self, b: Body):
        animation = b.text("animation", "oscillation", ("oscillation", "interpolation"))
        frames = b.number("frames", 24, lo=2, hi=MAX_FRAMES, kind=int)
        if animation == "interpolation":
            seeds = b.seeds(lo=2)
            if frames * (len(seeds) - 1) + 1 > MAX_FRAMES:
                raise ValueError(f"too many frames: at most {MAX_FRAMES} in all")
            images, _ = media.interpolation_frames(self.ex, seeds, frames,
                                                   space=b.text("space", "w", ("w", "z")),
                                                   psi=b.number("psi", 1.0, lo=-2, hi=2))
            return images, "interpolation_" + "_".join(map(str, seeds))
        recipe = self._recipe(b)
        if not recipe.edits and not recipe.directions:
            raise ValueError("an oscillation animates the recipe's edits: add an edit first")
        images = media.oscillation_frames(self.ex, recipe, self.latent(b), frames,
                                          low=b.number("low", 0.0, lo=-100, hi=100),
                                          high=b.number("high", 1.0, lo=-100, hi=100))
        return images, "oscillation"
