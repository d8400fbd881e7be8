"""Edit recipes: edits, the locators that place them, and latent directions, as versioned JSON.

    {"format": "stylegan_jax.recipe", "version": 1, "name": "open mouth",
     "locators": {"mouth": {"layer": "16x8_conv1", "channels": "3,7", "threshold": 0.5,
                            "template": [[0, 1, ...], ...] or null, "max_shift": 2 or null,
                            "offset": [1, 0]}},
     "edits": [{"layer": "16x8_conv1", "channels": "1,3,10-20*0.5", "amount": 2.0,
                "mask": [[0, 1, ...], ...] or null, "locator": "mouth", "anchor": [0.7, 0.5],
                "name": "open", "enabled": true,
                "contrast": [[r, g, b], [r, g, b]] or null}],
     "directions": [{"name": "black hair", "vector": [...], "strength": 1.0, "layers": [0, 8]}]}

`Recipe.from_json` checks the structure and types and raises a one-line ValueError naming the bad
field; `Recipe.check(explorer)` checks it against a model (layers, channel ranges, mask shapes).
`apply_recipe` applies one to any w: directions first, then the located, summed feature-map edits.

Ready-made edits: a model file X.npz may have a recipe beside it, X_edits.json
(`ready_edits_path`; experiments/bundle_edits.py writes the bundled demo model's), whose
directions and edits the explorer offers as sliders (`load_ready_edits`).
"""
import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from stylegan_jax.explore.edits import (Edit, contrast_signs, edit_deltas, format_channels,
                                        parse_channels)
from stylegan_jax.explore.latent import Direction, apply_directions
from stylegan_jax.explore.locate import Locator, place_mask
from stylegan_jax.utils import parse_json, read_json

FORMAT = "stylegan_jax.recipe"
VERSION = 1
# Without a model, channel numbers and cell offsets are bounded by this (more than any layer has);
# Recipe.check (or from_json with the explorer) checks them against the model's layers.
_ANY_CHANNEL = 1 << 16


@dataclasses.dataclass
class Recipe:
    """A reusable set of edits (see the module docstring for the JSON form)."""
    edits: List[Edit] = dataclasses.field(default_factory=list)
    locators: Dict[str, Locator] = dataclasses.field(default_factory=dict)
    directions: List[Direction] = dataclasses.field(default_factory=list)
    name: str = ""

    def check(self, explorer) -> "Recipe":
        """ValueError when the recipe does not fit the explorer's model."""
        for name, locator in self.locators.items():
            locator.check(explorer.layer(locator.layer))
        for i, edit in enumerate(self.edits):
            edit.check(explorer.layer(edit.layer))
            if edit.locator is not None:
                if edit.locator not in self.locators:
                    raise ValueError(f"edit {i} uses locator {edit.locator!r}, but the recipe has "
                                     f"{sorted(self.locators) or 'none'}")
                if edit.mask is None or edit.anchor is None:
                    raise ValueError(f"edit {i} has a locator, so it needs a mask and an anchor")
        for d in self.directions:
            d.check(explorer.num_layers, explorer.dlatent_size)
        return self

    def to_json(self) -> Dict[str, Any]:
        """JSON-ready dict (floats written exactly as the float32 values they hold)."""
        return {"format": FORMAT, "version": VERSION, "name": self.name,
                "locators": {n: {"layer": l.layer, "channels": format_channels(l.channels),
                                 "threshold": float(l.threshold),
                                 "template": None if l.template is None else _mask_json(l.template),
                                 "max_shift": l.max_shift, "offset": [int(o) for o in l.offset]}
                             for n, l in self.locators.items()},
                "edits": [{"name": e.name, "layer": e.layer, "channels": format_channels(e.channels),
                           "amount": float(e.amount), "enabled": bool(e.enabled),
                           "mask": None if e.mask is None else _mask_json(e.mask),
                           "locator": e.locator,
                           "anchor": None if e.anchor is None else [float(a) for a in e.anchor],
                           "contrast": None if e.contrast is None
                           else [[float(v) for v in c] for c in e.contrast]}
                          for e in self.edits],
                "directions": [d.to_json() for d in self.directions]}

    def dumps(self) -> str:
        """The recipe as a JSON string."""
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, obj, explorer=None) -> "Recipe":
        """A recipe from a JSON string or dict; ValueError naming the first problem. With an
        explorer, each channel list is checked against its layer while it is read (before a
        range is expanded); Recipe.check does the remaining checks against the model."""
        if isinstance(obj, (str, bytes)):
            obj = parse_json(obj, "recipe")
        _expect(obj, dict, "recipe")
        channels_of = (lambda layer: _ANY_CHANNEL) if explorer is None else (
            lambda layer: explorer.layer(_expect(layer, str, "layer")).channels)
        if obj.get("format") != FORMAT:
            raise ValueError(f"recipe 'format' must be {FORMAT!r}, got {obj.get('format')!r}")
        if obj.get("version") != VERSION:
            raise ValueError(f"recipe version {obj.get('version')!r} is not supported: this code "
                             f"reads version {VERSION}")
        unknown = set(obj) - {"format", "version", "name", "locators", "edits", "directions"}
        if unknown:
            raise ValueError(f"unknown recipe field(s) {sorted(unknown)}")
        locators = {}
        for name, spec in _expect(obj.get("locators", {}), dict, "locators").items():
            where = f"locators.{name}"
            _fields(spec, where, required=("layer", "channels"),
                    optional=("threshold", "template", "max_shift", "offset"))
            max_shift, offset = spec.get("max_shift"), spec.get("offset", [0, 0])
            if (not isinstance(offset, list) or len(offset) != 2
                    or not all(isinstance(o, int) and not isinstance(o, bool)
                               and abs(o) <= _ANY_CHANNEL for o in offset)):
                raise ValueError(f"recipe field {where}.offset must be [dy, dx] in whole cells")
            if max_shift is not None and (not isinstance(max_shift, int) or isinstance(max_shift, bool)
                                          or not 0 <= max_shift <= _ANY_CHANNEL):
                raise ValueError(f"recipe field {where}.max_shift must be null or an integer in "
                                 f"[0, {_ANY_CHANNEL}]")
            locators[name] = Locator(_expect(spec["layer"], str, f"{where}.layer"),
                                     _channels(spec["channels"], f"{where}.channels",
                                               channels_of(spec["layer"])),
                                     threshold=_number(spec.get("threshold", 0.5), f"{where}.threshold"),
                                     name=name, template=_mask(spec.get("template"), f"{where}.template"),
                                     max_shift=max_shift, offset=tuple(offset))
        edits = [_edit(spec, f"edits[{i}]", channels_of)
                 for i, spec in enumerate(_expect(obj.get("edits", []), list, "edits"))]
        directions = [Direction.from_json(spec, f"directions[{i}]")
                      for i, spec in enumerate(_expect(obj.get("directions", []), list, "directions"))]
        return cls(edits, locators, directions, name=_expect(obj.get("name", ""), str, "name"))


def _expect(value, kind, where):
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise ValueError(f"recipe field {where} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _number(value, where) -> float:
    try:
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or not isinstance(value, (int, float)) or not math.isfinite(number):
        text = repr(value) if len(repr(value)) < 40 else repr(value)[:40] + "..."
        raise ValueError(f"recipe field {where} must be a finite number, got {text}")
    return number


def _fields(spec, where, required, optional):
    _expect(spec, dict, where)
    missing = [k for k in required if k not in spec]
    if missing:
        raise ValueError(f"recipe field {where} is missing {missing}")
    unknown = set(spec) - set(required) - set(optional)
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)} in recipe field {where}")


def _mask_json(mask) -> list:
    return np.asarray(mask, np.float32).tolist()


def parse_mask(value, what: str) -> Optional[np.ndarray]:
    """A 2-d float32 mask from JSON (None stays None); ValueError "<what> must be ..." otherwise."""
    if value is None:
        return None
    try:
        mask = np.asarray(value, np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a 2-d list of numbers") from None
    if mask.ndim != 2 or not np.all(np.isfinite(mask)):
        raise ValueError(f"{what} must be a 2-d list of finite numbers, got shape {list(mask.shape)}")
    return mask


def _mask(value, where) -> Optional[np.ndarray]:
    return parse_mask(value, f"recipe field {where}")


def _channels(value, where, num_channels: int = _ANY_CHANNEL) -> Dict[int, float]:
    try:
        channels = parse_channels(_expect(value, str, where), num_channels)
    except ValueError as e:
        raise ValueError(f"recipe field {where}: {e}") from None
    if not channels:
        raise ValueError(f"recipe field {where} lists no channels")
    return channels


def _edit(spec, where, channels_of) -> Edit:
    _fields(spec, where, required=("layer", "channels"),
            optional=("name", "amount", "enabled", "mask", "locator", "anchor", "contrast"))
    mask = _mask(spec.get("mask"), f"{where}.mask")
    anchor = spec.get("anchor")
    if anchor is not None:
        if not isinstance(anchor, list) or len(anchor) != 2:
            raise ValueError(f"recipe field {where}.anchor must be [y, x]")
        anchor = tuple(_number(a, f"{where}.anchor") for a in anchor)
    locator = spec.get("locator")
    contrast = spec.get("contrast")
    if contrast is not None:
        if not (isinstance(contrast, list) and len(contrast) == 2
                and all(isinstance(c, list) and len(c) == 3 for c in contrast)):
            raise ValueError(f"recipe field {where}.contrast must be [[r, g, b], [r, g, b]] "
                             f"(the colours WITHOUT and WITH) or null")
        contrast = tuple(tuple(_number(v, f"{where}.contrast") for v in c) for c in contrast)
    return Edit(_expect(spec["layer"], str, f"{where}.layer"),
                _channels(spec["channels"], f"{where}.channels", channels_of(spec["layer"])),
                mask=mask, amount=_number(spec.get("amount", 1.0), f"{where}.amount"),
                name=_expect(spec.get("name", ""), str, f"{where}.name"),
                enabled=_expect(spec.get("enabled", True), bool, f"{where}.enabled"),
                locator=None if locator is None else _expect(locator, str, f"{where}.locator"),
                anchor=anchor, contrast=contrast)


def recipe_deltas(explorer, recipe: Recipe, w, **synthesis_kwargs) -> Dict[str, np.ndarray]:
    """{layer: delta [N or 1, h, w, c]} of the recipe's edits on w, with located masks placed."""
    located = {}
    for name in sorted({e.locator for e in recipe.edits if e.enabled and e.locator}):
        locator = recipe.locators[name]
        features = explorer.features(w, locator.layer, **synthesis_kwargs)
        located[name] = locator.locate(features)
    masks = {i: place_mask(e.mask, e.anchor, located[e.locator].centroid)
             for i, e in enumerate(recipe.edits) if e.enabled and e.locator}
    contrasted = [i for i, e in enumerate(recipe.edits) if e.enabled and e.contrast is not None]
    if contrasted:  # reversed on images that already have the WITH colour (edits, "Contrast")
        kwargs = {k: v for k, v in synthesis_kwargs.items() if k != "return_features"}
        images = explorer.synthesize(w, **kwargs).images
        for i in contrasted:
            edit = recipe.edits[i]
            mask = edit.effective_mask(explorer.layer(edit.layer), masks.get(i))
            masks[i] = mask * contrast_signs(edit.contrast, images, mask)[:, None, None]
    return edit_deltas(recipe.edits, explorer, masks)


def apply_recipe(explorer, recipe: Recipe, w, *, amount_scale: float = 1.0,
                 **synthesis_kwargs):
    """Renders w [N, layers, dlatent] with the recipe applied; returns (Rendering, edited w).

    amount_scale multiplies every edit's amount and direction's strength (0 = unedited).
    """
    recipe.check(explorer)
    w = apply_directions(explorer.check_w(w), recipe.directions, amount_scale)
    deltas = recipe_deltas(explorer, recipe, w, **synthesis_kwargs)
    deltas = {k: v * np.float32(amount_scale) for k, v in deltas.items()}
    return explorer.synthesize(w, deltas, **synthesis_kwargs), w


def apply_to_seeds(explorer, recipe: Recipe, seeds: Sequence[int], *, psi: float = 1.0,
                   center: Optional[np.ndarray] = None, amount_scale: float = 1.0, **synthesis_kwargs):
    """The recipe on a batch of seeds' w; returns (Rendering, edited w)."""
    w = explorer.w_from_seeds(seeds, psi=psi, center=center)
    return apply_recipe(explorer, recipe, w, amount_scale=amount_scale, **synthesis_kwargs)


def ready_edits_path(model_path: str) -> str:
    """Where a model file's ready-made edits sit: X.npz -> X_edits.json (a workdir: edits.json in it)."""
    if os.path.isdir(model_path):
        return os.path.join(model_path, "edits.json")
    return os.path.splitext(model_path)[0] + "_edits.json"


def load_ready_edits(model_path: str, explorer) -> Optional[Recipe]:
    """The ready-made edits beside a model (ready_edits_path) checked against the explorer's
    model, or None when there is no such file; ValueError naming the file when it does not fit."""
    path = ready_edits_path(model_path)
    if not os.path.isfile(path):
        return None
    try:
        return Recipe.from_json(read_json(path, path), explorer).check(explorer)
    except ValueError as e:
        raise ValueError(f"{path}: {e} (remove the file or write it again with "
                         f"python -m experiments.bundle_edits)") from None
