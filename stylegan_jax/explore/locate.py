"""Finding a part (mouth, eyes, top of head) in any generated image from its activations alone.

The observation behind it: the most active regions of some channels are meaningful
parts, so parts can be located automatically. A `Locator` is a few channels of one layer; its score
map is their weighted sum, each channel standardised over the map (so channels of different scales
count alike). Where the part is:
- with a `template` (the part as painted on the examples, at the layer's resolution; what
  `build_locator` makes): the template slid over the score map to where it covers the most score,
  then moved back by `offset`, where the score's best placement was relative to the painted part
  on the examples (channels that light up just above the mouth still find the mouth). The part
  moves at most `max_shift` cells from where it was painted and keeps the painted size, so a
  mouth stays mouth-sized.
- without one: the connected region around the score's maximum where the score is within
  `threshold` of it (as a fraction of the map's range); its size follows the score's shape.
An edit painted on one image then lands on the same part of every image by moving its mask with the
located part (`place_mask`).
"""
import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from stylegan_jax.explore.edits import check_channel, resize_mask
from stylegan_jax.explore.find import channel_similarity


@dataclasses.dataclass
class Location:
    """Where a locator found its part, per image: mask [N, h, w] (bool, at the locator's layer),
    centroid [N, 2] and box [N, 4] = (ymin, xmin, ymax, xmax), both as fractions of the image."""
    mask: np.ndarray
    centroid: np.ndarray
    box: np.ndarray

    def mask_at(self, shape: Tuple[int, int]) -> np.ndarray:
        """The located mask at another resolution, float32 [N, *shape]."""
        return resize_mask(self.mask.astype(np.float32), shape)

    def to_json(self) -> dict:
        return {"centroid": self.centroid.tolist(), "box": self.box.tolist()}


@dataclasses.dataclass
class Locator:
    """Channels of `layer` whose weighted sum peaks on a part."""
    layer: str
    channels: Dict[int, float]
    threshold: float = 0.5                  # blob mode: score within this fraction of the peak
    name: str = ""
    template: Optional[np.ndarray] = None   # float [h, w] at the layer: the part as painted (> 0)
    max_shift: Optional[int] = None         # template mode: farthest move in cells (None: anywhere)
    offset: Tuple[int, int] = (0, 0)        # template mode: best placement - painted part, cells

    def check(self, layer_info) -> "Locator":
        """ValueError when the locator does not fit the layer."""
        if layer_info.name != self.layer:
            raise ValueError(f"locator {self.name!r} is for layer {self.layer!r}, not {layer_info.name!r}")
        if not self.channels:
            raise ValueError(f"locator {self.name!r} has no channels: choose at least one")
        for c in self.channels:
            check_channel(c, layer_info.channels)
        if not 0 < self.threshold < 1:
            raise ValueError(f"locator threshold must be in (0, 1), got {self.threshold}")
        if self.template is not None:
            shape = (layer_info.height, layer_info.width)
            if np.shape(self.template) != shape or not (np.asarray(self.template) > 0).any():
                raise ValueError(f"locator {self.name!r}: its template must be a non-empty "
                                 f"{shape[0]}x{shape[1]} mask at layer {self.layer!r}, got shape "
                                 f"{list(np.shape(self.template))}")
        if self.max_shift is not None and self.max_shift < 0:
            raise ValueError(f"locator max_shift must be >= 0 cells, got {self.max_shift}")
        return self

    def score(self, features) -> np.ndarray:
        """float32 [N, h, w] in [0, 1]: the standardised weighted channel sum, min-max scaled."""
        features = np.asarray(features, np.float32)
        features = features[None] if features.ndim == 3 else features
        channels = sorted(self.channels)
        f = features[..., channels]
        f = (f - f.mean(axis=(1, 2), keepdims=True)) / (f.std(axis=(1, 2), keepdims=True) + 1e-8)
        s = np.einsum("nhwc,c->nhw", f, np.asarray([self.channels[c] for c in channels], np.float32))
        lo, hi = s.min(axis=(1, 2), keepdims=True), s.max(axis=(1, 2), keepdims=True)
        return (s - lo) / np.maximum(hi - lo, 1e-8)

    def locate(self, features) -> Location:
        """The part in each image of features [N, h, w, c] (or one [h, w, c])."""
        score = self.score(features)
        if self.template is not None:
            return self._match_template(score)
        n, h, w = score.shape
        masks = np.zeros(score.shape, bool)
        centroids, boxes = np.zeros((n, 2), np.float32), np.zeros((n, 4), np.float32)
        # (imported here: scipy.ndimage takes ~0.3 s to import, a wait at every explorer start)
        from scipy import ndimage  # pylint: disable=import-outside-toplevel
        for i in range(n):
            components, _ = ndimage.label(score[i] >= 1.0 - self.threshold)
            peak = np.unravel_index(np.argmax(score[i]), (h, w))
            masks[i] = components == components[peak]
            ys, xs = np.nonzero(masks[i])
            weights = score[i][ys, xs]
            centroids[i] = [(np.sum(weights * (ys + 0.5)) / weights.sum()) / h,
                            (np.sum(weights * (xs + 0.5)) / weights.sum()) / w]
            boxes[i] = [ys.min() / h, xs.min() / w, (ys.max() + 1) / h, (xs.max() + 1) / w]
        return Location(masks, centroids, boxes)

    def _part(self):
        """(the template cropped to its bounding box, its top-left cell (y, x) on the map)."""
        template = np.asarray(self.template, np.float32)
        ys, xs = np.nonzero(template > 0)
        return np.where(template > 0, template, 0)[ys.min():ys.max() + 1, xs.min():xs.max() + 1], (
            ys.min(), xs.min())

    def best_placements(self, score) -> np.ndarray:
        """int [N, 2]: per score map [N, h, w], the top-left cell where the template covers the
        most score, ignoring `offset` (but within `max_shift` of the painted part moved by it)."""
        part, (y0, x0) = self._part()
        ph, pw = part.shape
        # covered[i, y, x] = sum of score under the part with its top-left cell at (y, x)
        windows = np.lib.stride_tricks.sliding_window_view(score, (ph, pw), axis=(1, 2))
        covered = np.einsum("nyxab,ab->nyx", windows, part)
        if self.max_shift is not None:
            dy, dx = np.mgrid[0:covered.shape[1], 0:covered.shape[2]]
            far = np.maximum(np.abs(dy - self.offset[0] - y0),
                             np.abs(dx - self.offset[1] - x0)) > self.max_shift
            covered = np.where(far, -np.inf, covered)
        flat = covered.reshape(len(covered), -1).argmax(axis=1)
        return np.stack(np.unravel_index(flat, covered.shape[1:]), axis=1)

    def _match_template(self, score) -> Location:
        """Template mode: per image, the best placement moved back by `offset` (kept on the map)."""
        part, _ = self._part()
        n, h, w = score.shape
        ph, pw = part.shape
        weights = np.zeros(score.shape, np.float32)
        for i, (y, x) in enumerate(self.best_placements(score)):
            y = int(np.clip(y - self.offset[0], 0, h - ph))
            x = int(np.clip(x - self.offset[1], 0, w - pw))
            weights[i, y:y + ph, x:x + pw] = part
        masks = weights > 0
        total = weights.sum(axis=(1, 2))
        centroids = np.stack([np.einsum("nhw,h->n", weights, np.arange(h) + 0.5) / total / h,
                              np.einsum("nhw,w->n", weights, np.arange(w) + 0.5) / total / w], axis=1)
        boxes = np.zeros((n, 4), np.float32)
        for i in range(n):
            ys_i, xs_i = np.nonzero(masks[i])
            boxes[i] = [ys_i.min() / h, xs_i.min() / w, (ys_i.max() + 1) / h, (xs_i.max() + 1) / w]
        return Location(masks, centroids.astype(np.float32), boxes)


def build_locator(layer: str, features: Sequence[np.ndarray], masks: Sequence[np.ndarray], *,
                  top_k: int = 4, threshold: float = 0.5, name: str = "", template: bool = True,
                  max_shift: Optional[int] = None) -> Locator:
    """A locator from one or more examples: the top_k channels whose maps correlate best with the
    marked part (masks at the layer's resolution), averaged over the examples. With `template`, the
    part as marked on the first example is the locator's template (see the module docstring);
    without, it locates thresholded blobs."""
    if len(features) != len(masks) or not features:
        raise ValueError(f"need one mask per example, got {len(features)} features and {len(masks)} masks")
    similarity = np.mean([channel_similarity(f, m) for f, m in zip(features, masks)], axis=0)
    order = [int(c) for c in np.argsort(-similarity, kind="stable")[:max(1, top_k)]
             if similarity[c] > 0]
    if not order:
        raise ValueError("no channel responds to the marked part: mark the part on another layer")
    locator = Locator(layer, {c: 1.0 for c in order}, threshold=threshold, name=name)
    if template:
        locator.template = (np.abs(np.asarray(masks[0], np.float32)) > 0).astype(np.float32)
        # offset: where the score's best placement lies relative to the painted part, on average
        found = locator.best_placements(locator.score(np.stack([np.asarray(f) for f in features])))
        painted = [np.argwhere(np.abs(np.asarray(m)) > 0).min(axis=0) for m in masks]
        offset = np.round(np.mean(found - np.array(painted), axis=0)).astype(int)
        locator.offset, locator.max_shift = (int(offset[0]), int(offset[1])), max_shift
    return locator


def place_mask(mask: np.ndarray, anchor: Sequence[float], centroids: np.ndarray) -> np.ndarray:
    """float32 [N, h, w]: the mask moved by (located centroid - anchor), in whole cells.

    anchor and centroids are (y, x) fractions of the image; cells shifted in from outside are 0.
    """
    mask = np.asarray(mask, np.float32)
    h, w = mask.shape
    out = np.zeros((len(centroids), h, w), np.float32)
    for i, (cy, cx) in enumerate(np.asarray(centroids, np.float32)):
        dy, dx = int(round((cy - anchor[0]) * h)), int(round((cx - anchor[1]) * w))
        src = mask[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        out[i, max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out
