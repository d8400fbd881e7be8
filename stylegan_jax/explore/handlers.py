"""The explorer web API's endpoints: a validated request model in, a JSON-ready dict out.

Conventions (server.py routes the HTTP API here; api_models.py holds each request's fields, their
bounds, and the replies):

* A latent is {"seed": int, "psi": float} (psi defaults to 1) or {"w": media.encode_w(w)}; a
  render's own latent fields sit at the top level of its request, pairs are "a" and "b".
* A recipe is recipe.Recipe's JSON (object or string), checked against the model; absent = none.
* Masks and selections are 2-d lists at the layer's resolution (edits.py's conventions).
* Images come back as PNG data URLs; exports as {"filename", "mime", "data": data URL}, or as the
  file itself from a job (Api.export_work).
* A request that fits the models but not the explorer's model (unknown layer, channel out of
  range, wrong mask shape) raises ValueError with a one-line message naming the field (HTTP 400);
  a result that is not finite raises NonFinite (HTTP 422).
"""
import base64
import binascii
import dataclasses
import io
import math
import os
import itertools
import tempfile
import threading

import numpy as np
from PIL import Image
from pydantic import ValidationError

from stylegan_jax.explore import api_models as m
from stylegan_jax.explore import factorize, find, locate, media, project
from stylegan_jax.explore.edits import PAINT_MODES, check_channel, format_channels, parse_channels
from stylegan_jax.explore.latent import Direction, attribute_vector, lerp_w, slerp_z, style_mix
from stylegan_jax.explore.recipe import Recipe, apply_recipe, parse_mask

SORTS = ("channel", "magnitude", "similarity")
MAX_EXPORT_SIDE = 4096          # pixels of an exported frame's side (after scaling)
MAX_EXPORT_PIXELS = 1 << 27     # pixels of all frames of one animation together
FRAMES_PER_CALL = 8             # interpolation frames synthesized per call in an export
MAX_PROJECTED = 8               # projected images whose noise maps the explorer keeps
MAX_PROJECTORS = 4              # compiled projection programs kept (one per space and steps)


class NonFinite(ValueError):
    """A result holds NaN or an infinity (the edits overflowed float32); `field` names where."""

    def __init__(self, field: str):
        super().__init__(f"the result's {field} is not finite (NaN or infinite): lower the edit "
                         f"amounts, multipliers or direction strengths")
        self.field = field


def check_finite(value, field: str = "reply"):
    """Raises NonFinite naming the first non-finite float in a JSON-ready value; returns it."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NonFinite(field)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{field}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_finite(item, f"{field}[{i}]")
    return value


def png_data_url(image: np.ndarray) -> str:
    """uint8 [H, W, 3] -> "data:image/png;base64,..."."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def images_of(rendering, field: str = "image") -> np.ndarray:
    """The rendering's uint8 images; NonFinite when the float images hold NaN or inf."""
    if not np.all(np.isfinite(rendering.images)):
        raise NonFinite(field)
    return rendering.uint8


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


def map_statistics(features: np.ndarray, channels=None) -> dict:
    """{mean, std, min, max} of one image's maps [h, w, c] over the channels (None: all)."""
    values = np.asarray(features, np.float64)[..., slice(None) if channels is None else list(channels)]
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max())}


def decode_data_url(data: str) -> bytes:
    """The bytes of a base64 data URL ("data:<mime>;base64,<data>") or of plain base64."""
    if data.startswith("data:"):
        head, comma, data = data.partition(",")
        if not comma or not head.endswith(";base64"):
            raise ValueError("field 'data' must be a data URL like data:image/png;base64,<data> "
                             "or plain base64")
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("field 'data' is not valid base64: send the PNG as a data URL") from None


def provenance_for_clients(provenance: dict) -> dict:
    """The model's provenance with paths reduced to their file or folder name (the page has no
    use for where the model sits on this machine)."""
    out = {}
    for key, value in provenance.items():
        if isinstance(value, str) and os.path.isabs(value):
            value = os.path.basename(value.rstrip(os.sep)) or value
        out[key] = value
    return out


class Api:
    """The endpoints on one Explorer. Calls may come from several threads at once: the explorer
    serialises its own synthesis, so a long export (which renders frame by frame) lets quick
    renders in between."""

    def __init__(self, explorer, distance=None, face_detector=None, ready_edits=None):
        """distance: the projector's project.Distance (None: the pixel distance);
        face_detector: a prep.crops detector for projections' face crop (None: the face crop is
        unavailable); ready_edits: the model's ready-made edits, a Recipe (recipe.load_ready_edits)
        or None."""
        self.ex = explorer
        self.ready = None if ready_edits is None else ready_edits.check(explorer)
        self.distance = distance or project.pixel_distance()
        self.face_detector = face_detector
        self._projectors = {}            # (space, steps) -> project.Projector
        self._projected = []             # noise-mode names of projections, oldest first
        self._w_stats = None
        self._numbers = itertools.count(1)
        self._projection_lock = threading.Lock()

    # ------------------------------------------------------------------ helpers
    def latent(self, latent: m.LatentFields, where: str = "request") -> np.ndarray:
        """w [1, layers, dlatent] of a latent (seed + psi toward its center, or w)."""
        try:
            m.check_latent(latent)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if latent.w is not None:
            w = media.decode_w(latent.w.model_dump())
            if w.ndim not in (2, 3):
                raise ValueError(f"{where}: 'w' must have shape [{self.ex.num_layers}, "
                                 f"{self.ex.dlatent_size}], got {list(w.shape)}")
            w = self.ex.check_w(w)
            if w.shape[0] != 1 or not np.all(np.isfinite(w)):
                raise ValueError(f"{where}: 'w' must be one finite latent, got {list(w.shape)}")
            return w
        return self.seeds_w([latent.seed], latent.psi, latent, where)

    def label_of(self, label, where: str):
        """A request's label as float32 [label_size] (None for an unconditional model)."""
        size = self.ex.module.label_size
        if not size:
            if label is not None:
                raise ValueError(f"{where}: 'label' is for conditional models; this one has none")
            return None
        if label is None or len(label) != size:
            raise ValueError(f"{where}: this generator is conditional: send 'label', {size} "
                             f"numbers (e.g. a one-hot class)")
        return np.asarray(label, np.float32)

    def center_of(self, options: m.SeedOptions, where: str):
        """The truncation center of options as w [layers, dlatent], or None for the average w:
        "class" is the label's class average (Explorer.class_average), a latent its w."""
        center = getattr(options, "center", None)  # (a base image's latent has none of its own)
        if center == "class":
            label = self.label_of(options.label, where)
            if label is None:
                raise ValueError(f"{where}: center 'class' needs a conditional model: use "
                                 f"'average' or a base image")
            return self.ex.class_average(label)
        if isinstance(center, m.CenterLatent):
            if center.seed is not None and center.label is None and options.label is not None:
                center = center.model_copy(update={"label": options.label})
            return self.latent(center, f"{where}.center")[0]
        return None

    def seeds_w(self, seeds, psi, options: m.SeedOptions, where: str) -> np.ndarray:
        """w [N, layers, dlatent] of seeds with options' label, truncated by psi (None = 1)
        toward options' center (center_of)."""
        label = self.label_of(options.label, where)
        labels = None if label is None else np.repeat(label[None], len(seeds), axis=0)
        psi = 1.0 if psi is None else psi
        center = None if psi == 1.0 else self.center_of(options, where)
        return self.ex.w_from_seeds(seeds, psi=psi, center=center, labels=labels)

    def recipe_of(self, recipe) -> Recipe:
        """A request's recipe (RecipeJSON or None) read and checked against the model."""
        if recipe is None:
            return Recipe()
        obj = recipe.model_dump(mode="json") if isinstance(recipe, m.RecipeJSON) else recipe
        return Recipe.from_json(obj, self.ex).check(self.ex)

    def _image_reply(self, w, recipe, noise_mode):
        rendering, _ = apply_recipe(self.ex, self.recipe_of(recipe), w, noise_mode=noise_mode)
        return {"image": png_data_url(images_of(rendering)[0]), "w": media.encode_w(w)}

    def _mask(self, value, field: str, layer):
        mask = parse_mask(value, f"field {field!r}")
        if mask is not None and mask.shape != (layer.height, layer.width):
            raise ValueError(f"field {field!r} must be a {layer.height}x{layer.width} list of "
                             f"finite numbers (layer {layer.name}), got shape {list(mask.shape)}")
        return mask

    # ------------------------------------------------------------------ endpoints
    def info(self) -> dict:
        """GET /api/info: the model (Explorer.describe, paths as file names) and the API's
        choices and limits."""
        description = self.ex.describe()
        description["provenance"] = provenance_for_clients(description["provenance"])
        return dict(description, paint_modes=list(PAINT_MODES), sorts=list(SORTS),
                    noise_modes=self.ex.noise_modes, max_seeds=m.MAX_SEEDS,
                    max_frames=m.MAX_FRAMES, max_scale=m.MAX_SCALE,
                    projection={"distance": self.distance.name,
                                "max_steps": m.MAX_PROJECT_STEPS,
                                "face_crop": self.face_detector is not None})

    def ready_edits(self) -> dict:
        """GET /api/ready_edits: the model's ready-made sliders as one recipe (directions: attribute
        sliders, strength 1 = the found vector; edits: local edits, amount 1 = the found amount),
        or null for a model without them."""
        return {"recipe": None if self.ready is None else self.ready.to_json()}

    def gallery(self, req: m.GalleryRequest) -> dict:
        """Random samples of the seeds."""
        w = self.seeds_w(req.seeds, req.psi, req, "gallery")
        rendering = self.ex.synthesize(w, noise_mode=req.noise_mode)
        return {"images": [png_data_url(im) for im in images_of(rendering, "images")]}

    def render(self, req: m.RenderRequest) -> dict:
        """The latent with the recipe -> {image, w, maps?}. With `layer`: "maps" holds that
        layer's (edited) feature maps as one grid PNG, the channel of each cell ("order", by
        `sort` within `selection`) and the sort's values."""
        w = self.latent(req, "render")
        recipe = self.recipe_of(req.recipe)
        layer = None if req.layer is None else self.ex.layer(req.layer)
        selection = None if layer is None else self._mask(req.selection, "selection", layer)
        rendering, _ = apply_recipe(self.ex, recipe, w, noise_mode=req.noise_mode,
                                    return_features=layer is not None)
        out = {"image": png_data_url(images_of(rendering)[0]), "w": media.encode_w(w)}
        if layer is None:
            return out
        features = rendering.features[layer.name][0]
        if not np.all(np.isfinite(features)):
            raise NonFinite("maps")
        # The latent's maps without the recipe: for the statistics, and the sort's sort_maps.
        unedited = self.ex.features(w, layer.name, noise_mode=req.noise_mode)[0]
        values = None
        if req.sort == "channel":
            order = list(range(layer.channels))
        else:
            if selection is None or not np.any(selection):
                if req.sort == "similarity":
                    raise ValueError("sorting by similarity needs a selection: paint a region first")
                selection = np.ones((layer.height, layer.width), np.float32)
            ranked = (find.sort_by_magnitude if req.sort == "magnitude" else find.sort_by_similarity)(
                features if req.sort_maps == "edited" else unedited, selection)
            order, values = [c for c, _ in ranked], [float(v) for _, v in ranked]
        grid, rows, cols = map_grid(media.feature_map_colors(features), order)
        chosen = sorted(parse_channels(req.stats_channels or "", layer.channels)) or None
        out["maps"] = {"layer": dataclasses.asdict(layer), "grid": png_data_url(grid), "rows": rows,
                       "cols": cols, "gap": 1, "order": order, "values": values,
                       "scale": float(np.abs(features).max()),
                       "stats": {"channels": chosen, "unedited": map_statistics(unedited, chosen),
                                 "edited": map_statistics(features, chosen)}}
        return out

    def channels(self, req: m.ChannelsRequest) -> dict:
        """A channel list parsed (and a channel added or removed), written back in canonical form."""
        layer = self.ex.layer(req.layer)
        channels = parse_channels(req.text, layer.channels)
        if req.toggle is not None:
            check_channel(req.toggle, layer.channels)
            if channels.pop(req.toggle, None) is None:
                channels[req.toggle] = 1.0
        return {"text": format_channels(channels), "channels": sorted(channels.items())}

    def propose(self, req: m.ProposeRequest) -> dict:
        """find.propose_edit with a = the image WITH the attribute, b = without; the edit in
        recipe-JSON form."""
        layer = self.ex.layer(req.layer)
        mask_a = self._mask(req.mask_a, "mask_a", layer)
        mask_b = self._mask(req.mask_b, "mask_b", layer)
        if req.top_k > layer.channels:
            raise ValueError(f"field 'top_k' must be at most {layer.channels} (layer {layer.name})")
        renders = [self.ex.synthesize(self.latent(x, f"propose.{k}"), return_features=True,
                                      noise_mode=req.noise_mode)
                   for k, x in (("a", req.a), ("b", req.b))]
        edit = find.propose_edit(layer.name, *(r.features[layer.name][0] for r in renders),
                                 mask_a, mask_b, top_k=req.top_k, name=req.name,
                                 images=[r.images[0] for r in renders])
        return {"edit": Recipe([edit]).to_json()["edits"][0]}

    def direction(self, req: m.DirectionRequest) -> dict:
        """An attribute vector (mean w with - mean w without) in recipe-JSON form, strength 1."""
        groups = [[self.latent(x, f"direction.{key}[{i}]") for i, x in enumerate(items)]
                  for key, items in (("with", req.with_), ("without", req.without))]
        w = np.concatenate(groups[0] + groups[1])
        vector = attribute_vector(w, [True] * len(groups[0]) + [False] * len(groups[1]))
        spec = {"name": req.name, "vector": vector.tolist(), "strength": 1.0,
                "layers": None if req.layers is None else list(req.layers)}
        direction = Direction.from_json(spec, "direction").check(self.ex.num_layers,
                                                                 self.ex.dlatent_size)
        return {"direction": direction.to_json()}

    def factorize(self, req: m.FactorizeRequest) -> dict:
        """Directions found without labels (SeFa or GANSpace, explore.factorize) in recipe-JSON
        form, strength 0, with their eigenvalues / standard deviations; both scaled to one
        standard deviation of num_samples sampled w along them (a strength counts them)."""
        if req.method == "sefa":
            found = factorize.sefa(self.ex, req.layers, req.k, num_samples=req.num_samples,
                                   seed=req.seed)
        else:
            found = factorize.ganspace(self.ex, req.layers, req.k, req.num_samples, req.seed)
        return found.to_json()

    def interpolate(self, req: m.InterpolateRequest) -> dict:
        """lerp in W, or slerp in Z (needs two seeds; a's psi truncates) -> {image, w}."""
        if req.space == "z":
            if req.a.seed is None or req.b.seed is None:
                raise ValueError("interpolating in Z needs two seeds (a picked w has no z): use space 'w'")
            z = self.ex.z_from_seeds([req.a.seed, req.b.seed])
            # a's label, psi and center for the whole walk
            label = self.label_of(req.a.label, "interpolate.a")
            w = self.ex.mapping(slerp_z(z[0], z[1], req.t)[None], None if label is None else label[None])
            psi = 1.0 if req.a.psi is None else req.a.psi
            if psi != 1.0:
                w = self.ex.truncate(w, psi, self.center_of(req.a, "interpolate.a"))
        else:
            w = lerp_w(self.latent(req.a, "interpolate.a"), self.latent(req.b, "interpolate.b"), req.t)
        return self._image_reply(w, req.recipe, req.noise_mode)

    def mix(self, req: m.MixRequest) -> dict:
        """Layers < crossover from a (coarse styles), the rest from b -> {image, w}."""
        if req.crossover > self.ex.num_layers:
            raise ValueError(f"field 'crossover' must be at most {self.ex.num_layers}")
        w = style_mix(self.latent(req.a, "mix.a"), self.latent(req.b, "mix.b"), req.crossover)
        return self._image_reply(w, req.recipe, req.noise_mode)

    def apply_to_seeds_work(self, req: m.ApplyToSeedsRequest):
        """The recipe on the seeds (truncated by psi toward `center`), checked now, run by the
        returned work(progress) -> {images}."""
        recipe = self.recipe_of(req.recipe)
        w = self.seeds_w(req.seeds, req.psi, req, "apply_to_seeds")

        def work(progress=None):
            rendering, _ = apply_recipe(self.ex, recipe, w, amount_scale=req.amount_scale,
                                        noise_mode=req.noise_mode)
            return {"images": [png_data_url(im) for im in images_of(rendering, "images")]}
        return work

    def apply_to_seeds(self, req: m.ApplyToSeedsRequest) -> dict:
        """{recipe, seeds, psi, amount_scale, noise_mode} -> {images}."""
        return self.apply_to_seeds_work(req)()

    def sweep_work(self, req: m.SweepRequest):
        """A seeds x amounts grid of one edit (SweepRequest), checked now; the returned
        work(progress) renders it column by column -> {images (row by row), seeds, amounts}."""
        recipe = self.recipe_of(req.recipe)
        if req.edit >= len(recipe.edits):
            raise ValueError(f"field 'edit': the recipe has {len(recipe.edits)} edit(s); a sweep "
                             f"varies one edit's amount: add an edit first")
        if len(req.seeds) * len(req.amounts) > m.MAX_SEEDS:
            raise ValueError(f"a sweep of {len(req.seeds)} seeds x {len(req.amounts)} amounts has "
                             f"more than {m.MAX_SEEDS} images: use fewer seeds or amounts")
        w = self.seeds_w(req.seeds, req.psi, req, "sweep")

        def work(progress=None):
            columns = []
            for j, amount in enumerate(req.amounts):
                edits = list(recipe.edits)
                edits[req.edit] = edits[req.edit].with_amount(amount)
                rendering, _ = apply_recipe(self.ex, dataclasses.replace(recipe, edits=edits), w,
                                            noise_mode=req.noise_mode)
                columns.append(images_of(rendering, "images"))
                if progress is not None:
                    progress(j + 1, len(req.amounts))
            return {"images": [png_data_url(columns[j][i]) for i in range(len(req.seeds))
                               for j in range(len(req.amounts))],
                    "seeds": list(req.seeds), "amounts": [float(a) for a in req.amounts]}
        return work

    def sweep(self, req: m.SweepRequest) -> dict:
        """{seeds, amounts, recipe, edit, psi, ...} -> {images, seeds, amounts} (sweep_work)."""
        return self.sweep_work(req)()

    def locator(self, req: m.LocatorRequest) -> dict:
        """A locator (locate.build_locator) from this image's maps of `layer` and the part marked
        by `mask`, and the anchor: where it finds the part on this image. An edit with this
        locator and anchor has its mask moved, on each image, by where the part is found there."""
        layer = self.ex.layer(req.layer)
        mask = self._mask(req.mask, "mask", layer)
        if not np.any(mask):
            raise ValueError("field 'mask' is empty: paint the part to locate first")
        if req.top_k > layer.channels:
            raise ValueError(f"field 'top_k' must be at most {layer.channels} (layer {layer.name})")
        features = self.ex.features(self.latent(req, "locator"), layer.name,
                                    noise_mode=req.noise_mode)[0]
        locator = locate.build_locator(layer.name, [features], [mask], top_k=req.top_k,
                                       threshold=req.threshold, name=req.name,
                                       template=req.template, max_shift=req.max_shift)
        anchor = locator.locate(features).centroid[0]
        spec = Recipe(locators={req.name: locator}).to_json()["locators"][req.name]
        return {"locator": spec, "anchor": [float(a) for a in anchor]}

    def recipe(self, req: m.RecipeRequest) -> dict:
        """The recipe validated against the model, normalised."""
        return {"recipe": self.recipe_of(req.recipe).to_json()}

    def load_png(self, req: m.LoadPngRequest) -> dict:
        """A PNG (data URL or base64) -> {image, w, recipe, settings} (media.load_png)."""
        loaded = media.load_png(decode_data_url(req.data), read_recipe=self._png_recipe)
        recipe = loaded["recipe"]
        w = None if loaded["w"] is None else media.encode_w(self.ex.check_w(loaded["w"])[:1])
        return {"image": png_data_url(loaded["image"]), "w": w,
                "recipe": None if recipe is None else recipe.to_json(),
                "settings": check_finite(loaded["settings"], "settings")}

    def _png_recipe(self, obj) -> Recipe:
        """A recipe from PNG metadata, bounded like a request's (api_models.RecipeJSON)."""
        try:
            recipe = m.RecipeJSON.model_validate(obj)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "recipe"
            raise ValueError(f"the image's recipe is invalid at {where}: {first['msg']}") from None
        return self.recipe_of(recipe)

    def export_work(self, req: m.ExportRequest):
        """Checks an export now and returns work(progress) -> (filename, mime, bytes).

        png: the rendered latent + recipe, with the latent's w (before the recipe) and the recipe
        in its metadata (media.save_png). gif/mp4: animation "oscillation" (the recipe's amount,
        or only that of the edit or direction named `oscillate`, going low -> high -> low on the
        latent) or "interpolation" (a walk through `seeds`, `frames` per leg, truncated by psi
        toward `center`, every frame edited by the recipe), at `fps`, enlarged `scale` times."""
        recipe = self.recipe_of(req.recipe)
        if req.kind == "png":
            w = self.latent(req, "export")
            return lambda progress=None: self._png_file(req, w, recipe)
        if req.animation == "interpolation":
            if req.seeds is None:
                raise ValueError("an interpolation export needs the field 'seeds' (2 or more)")
            total = req.frames * (len(req.seeds) - 1) + 1
            name = "interpolation_" + "_".join(map(str, req.seeds))
            w = None
            label = self.label_of(req.label, "export")
            center = None if req.psi in (None, 1.0) else self.center_of(req, "export")
        else:
            if not recipe.edits and not recipe.directions:
                raise ValueError("an oscillation animates the recipe's edits: add an edit first")
            named = [x.name for x in recipe.edits + recipe.directions]
            if req.oscillate is not None and req.oscillate not in named:
                raise ValueError(f"field 'oscillate': the recipe has no edit or direction named "
                                 f"{req.oscillate!r} (it has {', '.join(map(repr, named))})")
            total, name, w = req.frames, "oscillation", self.latent(req, "export")
        if total > m.MAX_FRAMES:
            raise ValueError(f"too many frames: at most {m.MAX_FRAMES} in all")
        height, width = (side * req.scale for side in self.ex.image_shape)
        if max(height, width) > MAX_EXPORT_SIDE or total * height * width > MAX_EXPORT_PIXELS:
            raise ValueError(f"the animation would be {total} frames of {height}x{width} pixels: "
                             f"at most {MAX_EXPORT_SIDE} a side and {MAX_EXPORT_PIXELS} pixels in "
                             f"all (lower 'scale' or 'frames')")

        def work(progress=None):
            if req.animation == "interpolation":
                frames, _ = media.interpolation_frames(
                    self.ex, req.seeds, req.frames, space=req.space,
                    psi=1.0 if req.psi is None else req.psi, center=center, label=label,
                    recipe=recipe, noise_mode=req.noise_mode, chunk=FRAMES_PER_CALL,
                    progress=progress)
            else:
                frames = media.oscillation_frames(self.ex, recipe, w, req.frames, low=req.low,
                                                  high=req.high, progress=progress,
                                                  only=req.oscillate)
            return self._animation_file(req, frames, name)
        return work

    def export(self, req: m.ExportRequest) -> dict:
        """{kind: png|gif|mp4, ...} -> {filename, mime, data: data URL} (see export_work)."""
        filename, mime, data = self.export_work(req)()
        return {"filename": filename, "mime": mime,
                "data": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"}

    def _png_file(self, req: m.ExportRequest, w, recipe: Recipe):
        rendering, _ = apply_recipe(self.ex, recipe, w, noise_mode=req.noise_mode)
        settings = {"w": "before the recipe", "noise_mode": req.noise_mode or self.ex.noise_mode}
        if req.seed is not None:
            settings.update(seed=req.seed, psi=1.0 if req.psi is None else req.psi)
        name = f"seed{req.seed}.png" if req.seed is not None else "image.png"
        with tempfile.TemporaryDirectory(prefix="explorer_export_") as folder:
            path = media.save_png(os.path.join(folder, name), images_of(rendering)[0], w=w[0],
                                  recipe=recipe, settings=settings)
            with open(path, "rb") as f:
                return name, "image/png", f.read()

    def _animation_file(self, req: m.ExportRequest, frames, name: str):
        fps = req.fps or (12.0 if req.kind == "gif" else 24.0)
        with tempfile.TemporaryDirectory(prefix="explorer_export_") as folder:
            path = os.path.join(folder, f"{name}.{req.kind}")
            if req.kind == "gif":
                media.save_gif(path, frames, fps=fps, scale=req.scale)
            else:
                try:
                    media.save_mp4(path, frames, fps=fps, scale=req.scale)
                except RuntimeError as e:
                    if media.MP4_PINS not in str(e):
                        raise
                    raise ValueError(str(e)) from None  # imageio / imageio-ffmpeg missing
            with open(path, "rb") as f:
                return os.path.basename(path), "image/gif" if req.kind == "gif" else "video/mp4", f.read()

    # ------------------------------------------------------------------ projection
    def project_work(self, req: m.ProjectRequest):
        """Checks an upload now (decodable, at most project.MAX_INPUT_PIXELS, a face found for
        the face crop) and returns work(progress) projecting it (project.Projector, `steps`
        steps in `space`). The result: the reconstruction and the framed target, the w, and the
        noise mode under which the explorer now holds the projected noise maps (the last
        MAX_PROJECTED projections' maps are kept)."""
        if req.crop == "face" and self.face_detector is None:
            raise ValueError("the face crop needs a face detector: start the explorer with "
                             "--detector=animeface or --detector=opencv, or use crop 'centre'")
        data = decode_data_url(req.data)
        with tempfile.TemporaryDirectory(prefix="explorer_project_") as folder:
            path = os.path.join(folder, "upload")
            with open(path, "wb") as f:
                f.write(data)
            try:
                picture = project.read_image(path, exif_transpose=req.crop == "centre")
            except ValueError as e:
                raise ValueError(f"field 'data': {str(e).replace(path + ': ', '')}") from None
        target = project.frame_image(picture, self.ex.image_shape, crop=req.crop,
                                     detector=self.face_detector, key="upload")
        projector = self._projector(req.space, req.steps)

        def work(progress=None):
            with self._projection_lock:
                result = projector.project(target, None if progress is None else (
                    lambda step, total, distance: progress(step, total)))
            name = f"projected-{next(self._numbers)}"
            self.ex.add_noise_maps(name, result.noise_maps(0))
            self._projected.append(name)
            while len(self._projected) > MAX_PROJECTED:
                self.ex.remove_noise_maps(self._projected.pop(0))
            rendering = self.ex.synthesize(result.w[:1], noise_mode=name)
            return {"image": png_data_url(images_of(rendering)[0]), "target": png_data_url(target),
                    "w": media.encode_w(result.w[:1]), "noise_mode": name, "space": req.space,
                    "steps": int(len(result.losses)), "distance": result.distance_name,
                    "final_distance": float(result.distance[0]), "psnr": float(result.psnr[0])}
        return work

    def _projector(self, space: str, steps: int) -> project.Projector:
        """The projector for (space, steps), compiled once and kept (the MAX_PROJECTORS newest)."""
        with self._projection_lock:
            key = (space, steps)
            if key not in self._projectors:
                if self._w_stats is None:
                    self._w_stats = project.w_statistics(self.ex)
                config = project.ProjectionConfig(num_steps=steps, space=space, frame_every=0)
                self._projectors[key] = project.Projector(self.ex, self.distance, config,
                                                          w_stats=self._w_stats)
                while len(self._projectors) > MAX_PROJECTORS:
                    self._projectors.pop(next(iter(self._projectors)))
            return self._projectors[key]
