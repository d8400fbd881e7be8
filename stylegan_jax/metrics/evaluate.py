"""Compute several quality metrics of a generator against real images in one streaming pass."""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import jax
import numpy as np
from tqdm import tqdm

from stylegan_jax.metrics.fid import fid_from_features, kernel_inception_distance
from stylegan_jax.metrics.inception import inception_features, load_fid_inception
from stylegan_jax.metrics.ppl import perceptual_path_length, pixel_mse_distance
from stylegan_jax.metrics.swd import DescriptorSet, enlarge_small_images, swd_from_descriptors

METRICS = ("swd", "fid", "kid", "ppl")


def parse_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
    """'swd,fid' or ['swd', 'fid'] -> ('swd', 'fid'); unknown names raise ValueError."""
    names = tuple(m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip())
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metrics {unknown or names!r}: choose from {', '.join(METRICS)}")
    return names


def _take_images(batches: Iterable, num_images: int, what: str):
    """Yield NHWC image arrays (from arrays or {'image': ...} dicts) until num_images are out."""
    remaining = num_images
    for batch in batches:
        images = np.asarray(batch["image"] if isinstance(batch, dict) else batch)
        images = images[:remaining]
        remaining -= images.shape[0]
        yield images
        if remaining <= 0:
            return
    raise ValueError(f"{what} ran out after {num_images - remaining} of {num_images} images: "
                     "lower num_images or give more data")


def _generated_batches(generate_images: Callable, batch_size: int, seed: int):
    key = jax.random.PRNGKey(seed)
    for index in range(2 ** 31 - 1):
        yield generate_images(jax.random.fold_in(key, index), batch_size)


def evaluate(metrics: str | Sequence[str], *, generate_images: Callable | None = None,
             real_batches: Iterable | None = None, num_images: int = 10_000, batch_size: int = 32,
             inception_weights=None, mapping_fn: Callable | None = None, synthesis_fn: Callable | None = None,
             latent_size: int | None = None, ppl_distance_fn: Callable = pixel_mse_distance,
             ppl_num_samples: int = 10_000, ppl_space: str = "w", seed: int = 0) -> dict[str, float]:
    """Quality metrics as a flat dict: swd_<HxW>, swd_avg (x1e3), fid, kid, ppl.

    generate_images(key, count) -> NHWC images in [-1, 1] (or uint8); real_batches yields image
    arrays or pipeline dicts with 'image'. `num_images` are taken from each for SWD/FID/KID.
    inception_weights: a .npz path (see inception.load_fid_inception) or loaded variables.
    PPL needs mapping_fn, synthesis_fn (deterministic noise) and latent_size.
    """
    names = parse_metrics(metrics)
    results: dict[str, float] = {}
    needs_features = [m for m in names if m in ("fid", "kid")]
    if "swd" in names or needs_features:
        if generate_images is None or real_batches is None:
            raise ValueError("swd/fid/kid need both generate_images and real_batches")
        if needs_features and inception_weights is None:
            raise ValueError("fid/kid need inception_weights: a .npz made by "
                             "python -m stylegan_jax.metrics.convert_fid_weights")
        variables = (load_fid_inception(inception_weights) if isinstance(inception_weights, str)
                     else inception_weights)
        streams = {"real": _take_images(real_batches, num_images, "real_batches"),
                   "fake": _take_images(_generated_batches(generate_images, batch_size, seed), num_images,
                                        "generate_images")}
        descriptors, features = {}, {}
        for which, stream in streams.items():
            descriptor_set, feature_list = None, []
            for images in tqdm(stream, desc=f"metrics: {which} images", unit="batch"):
                if "swd" in names:  # images under 16 px (early stages) are enlarged first
                    enlarged = enlarge_small_images(images)
                    if descriptor_set is None:
                        descriptor_set = DescriptorSet(enlarged.shape[1:3], seed=seed)
                    descriptor_set.add(enlarged)
                if needs_features:
                    feature_list.append(inception_features(variables, images, batch_size=batch_size))
            if descriptor_set is not None:
                descriptors[which] = (descriptor_set.level_shapes, descriptor_set.finalize())
            if needs_features:
                features[which] = np.concatenate(feature_list)
        if "swd" in names:
            level_shapes = descriptors["real"][0]
            if descriptors["fake"][0] != level_shapes:
                raise ValueError(f"generated images ({descriptors['fake'][0][0]}) and real images "
                                 f"({level_shapes[0]}) differ in size: generate at the data resolution")
            swd = swd_from_descriptors(descriptors["real"][1], descriptors["fake"][1], level_shapes, seed=seed)
            results.update({f"swd_{name}": value for name, value in swd.items()})
        if "fid" in names:
            results["fid"] = fid_from_features(features["real"], features["fake"])
        if "kid" in names:
            results["kid"] = kernel_inception_distance(features["real"], features["fake"], seed=seed)
    if "ppl" in names:
        if mapping_fn is None or synthesis_fn is None or latent_size is None:
            raise ValueError("ppl needs mapping_fn, synthesis_fn and latent_size")
        results["ppl"] = perceptual_path_length(mapping_fn, synthesis_fn, latent_size, num_samples=ppl_num_samples,
                                                batch_size=batch_size, space=ppl_space,
                                                distance_fn=ppl_distance_fn, seed=seed)["ppl"]
    return results
