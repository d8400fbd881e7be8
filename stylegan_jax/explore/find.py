"""Finding the channels behind a change, from at most two labelled examples.

The recipe: mark a region (say the mouth) on
an image that has the attribute (open) and on one that does not (closed); the channels whose mean
activation inside the region differs most between the two are the ones that draw the difference.
Adding that difference, in that region, to another image's feature maps makes the change there.

Also two channel sorts for a selection: by activation magnitude inside it, and
by similarity of the channel's map to the selection (a channel that "lights up" where you painted).

Features are one image's maps, float [h, w, c] (or [1, h, w, c]); masks are float [h, w] at the
layer's resolution (see edits.resize_mask for masks painted on the image).
"""
from typing import List, Optional, Tuple

import numpy as np

from stylegan_jax.explore.edits import Edit, region_colors


def _single(features) -> np.ndarray:
    features = np.asarray(features, np.float32)
    if features.ndim == 4:
        if features.shape[0] != 1:
            raise ValueError(f"expected one image's features, got a batch of {features.shape[0]}")
        features = features[0]
    if features.ndim != 3:
        raise ValueError(f"features must be [h, w, c], got shape {list(features.shape)}")
    return features


def _weights(mask, shape) -> np.ndarray:
    mask = np.abs(np.asarray(mask, np.float32))
    if mask.shape != tuple(shape):
        raise ValueError(f"mask is {list(mask.shape)} but the features are {list(shape)}: resize "
                         f"it with edits.resize_mask")
    if mask.sum() <= 0:
        raise ValueError("the selection is empty: paint a region first")
    return mask / mask.sum()


def region_mean(features, mask) -> np.ndarray:
    """float [c]: each channel's mean activation inside the (weighted) selection."""
    features = _single(features)
    return np.einsum("hwc,hw->c", features, _weights(mask, features.shape[:2]))


def rank_channels(features_with, features_without, mask_with, mask_without=None
                  ) -> List[Tuple[int, float]]:
    """[(channel, difference)] sorted by |difference|, largest first.

    difference = mean activation in the region of the image WITH the attribute minus the same for
    the image WITHOUT it (each with its own mask; mask_without defaults to mask_with).
    """
    mask_without = mask_with if mask_without is None else mask_without
    diff = region_mean(features_with, mask_with) - region_mean(features_without, mask_without)
    order = np.argsort(-np.abs(diff), kind="stable")
    return [(int(c), float(diff[c])) for c in order]


def propose_edit(layer: str, features_with, features_without, mask_with, mask_without=None,
                 *, top_k: int = 8, region: Optional[np.ndarray] = None, name: str = "",
                 images=None) -> Edit:
    """An edit that moves an image without the attribute toward one with it, in the region.

    Takes the top_k channels of rank_channels; multipliers are their differences divided by the
    largest one (so the biggest is +-1) and the amount is that largest difference: at amount 1 the
    edited channels' region means change by exactly the examples' difference. The edit's mask is
    `region` (default: mask_without, binarised), where the change is to be applied.
    images (image WITH, image WITHOUT, each [H, W, 3] in [-1, 1]), when given, record the
    examples' mean colours inside their masks as the edit's contrast (edits, "Contrast"), so that
    the edit reverses on images that already have the WITH colour there.
    """
    mask_without = mask_with if mask_without is None else mask_without
    ranked = rank_channels(features_with, features_without, mask_with, mask_without)[:max(1, top_k)]
    scale = abs(ranked[0][1])
    if scale == 0:
        raise ValueError("the two examples do not differ in the selected region: pick examples "
                         "that differ there")
    region = mask_without if region is None else region
    mask = (np.abs(np.asarray(region, np.float32)) > 0).astype(np.float32)
    contrast = None
    if images is not None:
        image_with, image_without = (np.asarray(i, np.float32).reshape(1, *np.shape(i)[-3:])
                                     for i in images)
        contrast = (tuple(region_colors(image_without, mask_without)[0].tolist()),
                    tuple(region_colors(image_with, mask_with)[0].tolist()))
    return Edit(layer, {c: d / scale for c, d in ranked}, mask=mask, amount=scale, name=name,
                contrast=contrast)


def sort_by_magnitude(features, mask) -> List[Tuple[int, float]]:
    """[(channel, mean |activation| in the selection)], largest first."""
    features = _single(features)
    value = np.einsum("hwc,hw->c", np.abs(features), _weights(mask, features.shape[:2]))
    return [(int(c), float(value[c])) for c in np.argsort(-value, kind="stable")]


def channel_similarity(features, mask) -> np.ndarray:
    """float [c]: Pearson correlation of each channel's map with the selection (0 for flat maps)."""
    features = _single(features)
    mask = np.asarray(mask, np.float32)
    _weights(mask, features.shape[:2])  # validates shape and non-emptiness
    f = features - features.mean(axis=(0, 1))
    m = mask - mask.mean()
    denominator = np.sqrt((f**2).sum(axis=(0, 1)) * (m**2).sum())
    numerator = np.einsum("hwc,hw->c", f, m)
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-30), 0.0)


def sort_by_similarity(features, mask) -> List[Tuple[int, float]]:
    """[(channel, correlation of its map with the selection)], most similar first."""
    value = channel_similarity(features, mask)
    return [(int(c), float(value[c])) for c in np.argsort(-value, kind="stable")]
