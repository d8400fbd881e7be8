"""Feature-map edits: which channels of which layer, where, and how much.

An `Edit` (one "tab" of the explorer page) adds

    delta[y, x, c] = amount * mask[y, x] * multiplier[c]

to the output of one synthesis layer (after its style modulation), for the chosen channels only.
The mask lives at the layer's own resolution; painting sets cells to +1 ("add"), -1 ("subtract")
or 0 ("erase"), so one tab can push some places up and others down. Several tabs may edit the
same layer: their deltas are summed (`edit_deltas`). Channel lists are typed as "1,3,10-20" with
optional multipliers ("5*0.5", "10-20*-1").

Masks and coordinates: cell (i, j) covers [i, i + 1) x [j, j + 1) in layer pixels; boxes are
(ymin, xmin, ymax, xmax) as fractions of the height and width, so one box means the same place at
every resolution.
"""
import dataclasses
import re
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

# The mask value each paint mode of the page sets (the page paints the masks: static/editor.js).
PAINT_MODES = {"add": 1.0, "subtract": -1.0, "erase": 0.0}
MAX_MULTIPLIER = 1e6  # a channel's multiplier (larger ones overflow float32 activations)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# "first", "first-last", either with an optional "*multiplier"
_CHANNEL_ITEM = re.compile(rf"^\s*(\d+)\s*(?:-\s*(\d+))?\s*(?:\*\s*({_NUMBER}))?\s*$")


def parse_channels(text: str, num_channels: int) -> Dict[int, float]:
    """"1,3,10-20,5*0.5" -> {channel: multiplier}; later items override earlier ones."""
    channels = {}
    for item in str(text).split(","):
        if not item.strip():
            continue
        match = _CHANNEL_ITEM.match(item)
        if not match:
            raise ValueError(f"bad channel list item {item.strip()!r} in {text!r}: write items like "
                             f"3, 10-20 or 5*0.5 separated by commas")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"bad channel range {item.strip()!r}: the first channel must not "
                             f"exceed the last")
        multiplier = float(match.group(3)) if match.group(3) is not None else 1.0
        if not abs(multiplier) <= MAX_MULTIPLIER:
            raise ValueError(f"bad multiplier in {item.strip()!r}: it must be a number in "
                             f"[-{MAX_MULTIPLIER:g}, {MAX_MULTIPLIER:g}]")
        check_channel(last, num_channels)  # before expanding the range: it is at most the layer
        for c in range(first, last + 1):
            channels[c] = multiplier
    return channels


def check_channel(channel: int, num_channels: int) -> int:
    """The channel index, or ValueError when it is outside [0, num_channels)."""
    if not 0 <= int(channel) < num_channels:
        raise ValueError(f"channel {channel} out of range: this layer has {num_channels} "
                         f"channels (0-{num_channels - 1})")
    return int(channel)


def format_channels(channels: Mapping[int, float]) -> str:
    """{channel: multiplier} -> "1,3,10-20,5*0.5" (the inverse of parse_channels)."""
    items, run = [], []
    for c, m in sorted(channels.items()):
        if run and c == run[-1][0] + 1 and m == run[-1][1]:
            run.append((c, m))
            continue
        if run:
            items.append(run)
        run = [(c, m)]
    if run:
        items.append(run)
    out = []
    for run in items:
        text = str(run[0][0]) if len(run) == 1 else f"{run[0][0]}-{run[-1][0]}"
        out.append(text if run[0][1] == 1.0 else f"{text}*{run[0][1]!r}")
    return ",".join(out)


# ------------------------------------------------------------------------------- masks

def box_mask(shape: Tuple[int, int], box: Sequence[float], value: float = 1.0) -> np.ndarray:
    """float32 [h, w]: `value` in cells whose centre lies in box (ymin, xmin, ymax, xmax) in [0, 1]."""
    h, w = shape
    ymin, xmin, ymax, xmax = (float(b) for b in box)
    if not (0 <= ymin <= ymax <= 1 and 0 <= xmin <= xmax <= 1):
        raise ValueError(f"bad box {list(box)}: need 0 <= ymin <= ymax <= 1 and 0 <= xmin <= xmax <= 1")
    ys = (np.arange(h) + 0.5) / h
    xs = (np.arange(w) + 0.5) / w
    inside = ((ys >= ymin) & (ys <= ymax))[:, None] & ((xs >= xmin) & (xs <= xmax))[None, :]
    return np.where(inside, np.float32(value), np.float32(0))


def resize_mask(mask: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """A mask [..., h, w] at another power-of-two-related resolution: area average when shrinking,
    nearest neighbour when growing (so a painted cell covers exactly its area)."""
    mask = np.asarray(mask, np.float32)
    h, w = mask.shape[-2:]
    H, W = shape
    if (H * w != W * h) or not (H % h == 0 or h % H == 0):
        raise ValueError(f"cannot resize a {h}x{w} mask to {H}x{W}: the aspect ratio must match and "
                         f"the sizes differ by an integer factor")
    if H >= h:
        f = H // h
        return mask.repeat(f, axis=-2).repeat(f, axis=-1)
    f = h // H
    return mask.reshape(*mask.shape[:-2], H, f, W, f).mean(axis=(-3, -1))


def region_colors(images, masks) -> np.ndarray:
    """float32 [N, 3]: each image's mean colour weighted by |mask| (masks [h, w] or [N, h, w] at
    any layer's resolution, resized to the image's); NaN where the mask is empty (a located mask
    moved off the map)."""
    images = np.asarray(images, np.float32)
    weights = np.abs(resize_mask(masks, images.shape[1:3]))
    weights = np.broadcast_to(weights, images.shape[:3])
    total = weights.sum(axis=(1, 2))
    return np.einsum("nhwc,nhw->nc", images, weights) / np.where(total > 0, total, np.nan)[:, None]


def contrast_signs(contrast, images, masks) -> np.ndarray:
    """float32 [N] of +1 / -1: -1 where an image already has, inside the mask, the WITH colour.

    contrast = (colour WITHOUT, colour WITH) of the examples, c0 and c1; d = c1 - c0. An image's
    region colour c is c0 + t d + (a part off the line). It already has the WITH colour, more
    strongly, when it lies beyond the WITH example (t > 1) and along the change: within 45 degrees
    of d, i.e. its distance from the line is below t |d|. (Black hair, say, can lie beyond a
    light-blue band's colour on the line from pink hair, but far off that line.) There the edit
    would paint what is already there, so it is reversed. An empty mask (NaN colour) keeps +1.
    """
    c0, c1 = (np.asarray(c, np.float32) for c in contrast)
    d = c1 - c0
    if not np.dot(d, d) > 0:
        return np.ones(len(images), np.float32)
    offset = region_colors(images, masks) - c0
    t = offset @ d / np.dot(d, d)
    off_line = np.linalg.norm(offset - t[:, None] * d, axis=1)
    beyond = (t > 1.0) & (off_line < t * np.linalg.norm(d))
    return np.where(beyond, np.float32(-1), np.float32(1))


# ------------------------------------------------------------------------------- edits

@dataclasses.dataclass
class Edit:
    """One tab: amount * mask[y, x] * channels[c] added to `layer`'s output.

    mask None means the whole map. `locator` names a locator of the recipe that moves the mask
    onto the located part of each image; `anchor` (y, x as fractions) is where that part was
    when the mask was painted (see locate.place_mask). `contrast` (colour WITHOUT, colour WITH:
    the examples' mean RGB in [-1, 1] inside the region) reverses the edit on images that already
    have the WITH colour there (module docstring, "Contrast").
    """
    layer: str
    channels: Dict[int, float]
    mask: Optional[np.ndarray] = None
    amount: float = 1.0
    name: str = ""
    enabled: bool = True
    locator: Optional[str] = None
    anchor: Optional[Tuple[float, float]] = None
    contrast: Optional[Tuple[Tuple[float, float, float], Tuple[float, float, float]]] = None

    def check(self, layer_info) -> "Edit":
        """Raises ValueError when the edit does not fit the layer (channels, mask shape)."""
        if layer_info.name != self.layer:
            raise ValueError(f"edit {self.name!r} is for layer {self.layer!r}, not {layer_info.name!r}")
        for c in self.channels:
            check_channel(c, layer_info.channels)
        if self.mask is not None:
            shape = np.shape(self.mask)[-2:]
            if tuple(shape) != (layer_info.height, layer_info.width) or np.ndim(self.mask) not in (2, 3):
                raise ValueError(f"mask of edit {self.name!r} is {list(np.shape(self.mask))}, layer "
                                 f"{self.layer} needs [{layer_info.height}, {layer_info.width}]")
        if self.contrast is not None and (np.shape(self.contrast) != (2, 3)
                                          or not np.all(np.isfinite(self.contrast))):
            raise ValueError(f"contrast of edit {self.name!r} must be two finite RGB colours "
                             f"[[r, g, b], [r, g, b]] (WITHOUT, WITH)")
        return self

    def effective_mask(self, layer_info, mask: Optional[np.ndarray] = None) -> np.ndarray:
        """float32 [1 or N, h, w]: where this tab acts (mask overrides self.mask, e.g. placed;
        no mask at all is the whole map)."""
        mask = self.mask if mask is None else mask
        if mask is None:
            mask = np.ones((layer_info.height, layer_info.width), np.float32)
        mask = np.asarray(mask, np.float32)
        return mask[None] if mask.ndim == 2 else mask

    def delta(self, layer_info, mask: Optional[np.ndarray] = None) -> np.ndarray:
        """float32 [1 or N, h, w, c]: what this tab adds (mask overrides self.mask, e.g. placed)."""
        self.check(layer_info)
        weights = np.zeros(layer_info.channels, np.float32)
        for c, m in self.channels.items():
            weights[c] = m
        return np.float32(self.amount) * self.effective_mask(layer_info, mask)[..., None] * weights

    def with_amount(self, amount: float) -> "Edit":
        """A copy with another amount (for sliders and sweeps)."""
        return dataclasses.replace(self, amount=float(amount))


def edit_deltas(edits: Iterable[Edit], explorer, masks: Optional[Mapping[int, np.ndarray]] = None
                ) -> Dict[str, np.ndarray]:
    """{layer: summed delta} of the enabled edits; masks {edit position: mask} override theirs."""
    deltas = {}
    for i, edit in enumerate(edits):
        if not edit.enabled:
            continue
        delta = edit.delta(explorer.layer(edit.layer), (masks or {}).get(i))
        deltas[edit.layer] = deltas[edit.layer] + delta if edit.layer in deltas else delta
    return deltas
