"""Finding a part (mouth, eyes, top of head) in any generated image from its activations alone.

The mission's observation (Figure 5): the most active regions of some channels are meaningful
parts, so parts can be located automatically. A `Locator` is a few channels of one layer; its score
map is their weighted sum, each channel standardised over the map (so channels of different scales
count alike). The part is the connected region around the score's maximum where the score is
within `threshold` of it (as a fraction of the map's range). An edit painted on one image then lands
on the same part of every image by moving its mask with the located part (`place_mask`).
"""
import dataclasses
from typing import Dict, Sequence, Tuple

import numpy as np
from scipy import ndimage

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
    threshold: float = 0.5
    name: str = ""

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
        n, h, w = score.shape
        masks = np.zeros(score.shape, bool)
        centroids, boxes = np.zeros((n, 2), np.float32), np.zeros((n, 4), np.float32)
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


def build_locator(layer: str, features: Sequence[np.ndarray], masks: Sequence[np.ndarray], *,
                  top_k: int = 4, threshold: float = 0.5, name: str = "") -> Locator:
    """A locator from one or more examples: the top_k channels whose maps correlate best with the
    marked part (masks at the layer's resolution), averaged over the examples."""
    if len(features) != len(masks) or not features:
        raise ValueError(f"need one mask per example, got {len(features)} features and {len(masks)} masks")
    similarity = np.mean([channel_similarity(f, m) for f, m in zip(features, masks)], axis=0)
    order = [int(c) for c in np.argsort(-similarity, kind="stable")[:max(1, top_k)]
             if similarity[c] > 0]
    if not order:
        raise ValueError("no channel responds to the marked part: mark the part on another layer")
    return Locator(layer, {c: 1.0 for c in order}, threshold=threshold, name=name)


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
