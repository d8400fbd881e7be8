"""Sliced Wasserstein distance (SWD) between two image sets, as PGGAN defines it.

Karras et al. 2017, "Progressive Growing of GANs", section 5 and appendix D: each image is
decomposed into a Laplacian pyramid (from full resolution down to 16 px on the short side);
from every level, 7x7 neighbourhoods ("descriptors", 7*7*3 numbers) are sampled at random
positions (128 per image). Each set's descriptors are normalised per colour channel (mean 0,
std 1 over that set), then the distance between the two descriptor clouds is estimated by
projecting them on random unit directions (4 repeats x 128 directions), sorting the
projections and averaging the absolute differences of the sorted values (the 1-D Wasserstein
distance). Results are reported multiplied by 1e3, per level and averaged over the levels.

Because each set is normalised by its own per-channel statistics, SWD is blind to a uniform
per-channel affine change of the colours (a constant tint or contrast change): it measures the
distribution of local structure and of the colour *relations* between channels, so a hue
rotation or desaturation, blur, or noise show up, a global brightness offset does not.

Pure numpy; inputs are NHWC, either uint8 in [0, 255] or float in [-1, 1] (both mapped to the
0..255 scale PGGAN used). Rectangular images are fine as long as each dimension halves evenly
down to the last level. All randomness comes from one integer seed; both sets are sampled at the
same patch positions (see DescriptorSet), so identical sets score exactly 0.
"""
from __future__ import annotations

import numpy as np

from stylegan_jax.metrics.images import as_signed_unit_images

PATCH_SIZE = 7             # PGGAN appendix D: 7x7 neighbourhoods
PATCHES_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_LEVEL_SIZE = 16        # the pyramid stops at 16 px on the short side

# 5-tap binomial filter; its outer product is the 5x5 Gaussian of cv2.pyrDown / pyrUp.
_BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0


def pyramid_level_shapes(image_shape: tuple[int, int]) -> list[tuple[int, int]]:
    """(H, W) of each Laplacian-pyramid level: halve until the short side would drop below 16.

    Raises ValueError when the image is smaller than 16 px or a dimension does not halve evenly.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    if min(height, width) < MIN_LEVEL_SIZE:
        raise ValueError(f"SWD needs images of at least {MIN_LEVEL_SIZE} px on the short side, got {height}x{width}")
    shapes = [(height, width)]
    while min(height, width) // 2 >= MIN_LEVEL_SIZE:
        if height % 2 or width % 2:
            raise ValueError(f"SWD pyramid needs even image sizes at every level, got {height}x{width}: "
                             "resize images to a multiple of a power of two")
        height, width = height // 2, width // 2
        shapes.append((height, width))
    return shapes


def enlarge_small_images(images) -> np.ndarray:
    """NHWC images enlarged (nearest neighbour) by the smallest power of two that brings the short
    side to the pyramid's 16-px minimum; larger images are returned unchanged. PGGAN likewise
    measured its low-resolution stages on upscaled images. Apply it to both sets alike."""
    images = np.asarray(images)
    factor = 1
    while min(images.shape[1:3]) * factor < MIN_LEVEL_SIZE:
        factor *= 2
    return images if factor == 1 else images.repeat(factor, axis=1).repeat(factor, axis=2)


def _filter_axis(x: np.ndarray, axis: int, taps: np.ndarray) -> np.ndarray:
    """Correlate `x` with a 5-tap filter along `axis`, mirror-padded (cv2 BORDER_REFLECT_101)."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (2, 2)
    padded = np.pad(x, pad, mode="reflect")    # numpy 'reflect' does not repeat the edge sample
    length = x.shape[axis]
    out = np.zeros_like(x)
    for offset, tap in enumerate(taps):
        out += tap * np.take(padded, np.arange(offset, offset + length), axis=axis)
    return out


def _gaussian_blur(x: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Separable 5x5 Gaussian on the H and W axes of an NHWC array."""
    return _filter_axis(_filter_axis(x, 1, _BINOMIAL_5 * gain), 2, _BINOMIAL_5)


def pyr_down(images: np.ndarray) -> np.ndarray:
    """Blur then keep every second pixel (the cv2.pyrDown operation)."""
    return _gaussian_blur(images)[:, ::2, ::2]


def pyr_up(images: np.ndarray) -> np.ndarray:
    """Insert zeros between pixels then blur with 4x gain (the cv2.pyrUp operation)."""
    n, h, w, c = images.shape
    upsampled = np.zeros((n, 2 * h, 2 * w, c), images.dtype)
    upsampled[:, ::2, ::2] = images
    return _gaussian_blur(upsampled, gain=4.0)


def laplacian_pyramid(images: np.ndarray, num_levels: int) -> list[np.ndarray]:
    """Band-pass levels (finest first) plus the low-pass residual as the last level."""
    levels = [np.asarray(images, np.float32)]
    for _ in range(1, num_levels):
        levels.append(pyr_down(levels[-1]))
        levels[-2] = levels[-2] - pyr_up(levels[-1])
    return levels


def to_pixel_scale(images) -> np.ndarray:
    """uint8 [0, 255] or float [-1, 1] NHWC images -> float32 on the 0..255 scale PGGAN used."""
    return (as_signed_unit_images(images) + 1.0) * 127.5


def sample_descriptors(level: np.ndarray, rng: np.random.Generator,
                       patches_per_image: int = PATCHES_PER_IMAGE, patch_size: int = PATCH_SIZE) -> np.ndarray:
    """Random patch_size^2 neighbourhoods fully inside each image -> [N * patches, size, size, C]."""
    n, h, w, _ = level.shape
    half = patch_size // 2
    count = n * patches_per_image
    image_index = np.repeat(np.arange(n), patches_per_image)[:, None, None]
    centre_y = rng.integers(half, h - half, size=count)[:, None, None]
    centre_x = rng.integers(half, w - half, size=count)[:, None, None]
    offsets = np.arange(-half, half + 1)
    rows = centre_y + offsets[None, :, None]
    cols = centre_x + offsets[None, None, :]
    return level[image_index, rows, cols]


def normalize_descriptors(descriptors: np.ndarray) -> np.ndarray:
    """Per-channel standardisation over the whole set, then flatten to [num, size*size*C]."""
    # float64 accumulators: float32 sums over ~1e6 values would lose about 3 digits
    mean = descriptors.mean(axis=(0, 1, 2), keepdims=True, dtype=np.float64)
    descriptors = descriptors - mean.astype(descriptors.dtype)
    std = descriptors.std(axis=(0, 1, 2), keepdims=True, dtype=np.float64)
    descriptors = descriptors / np.maximum(std, 1e-8).astype(descriptors.dtype)   # flat channel: no NaN
    return descriptors.reshape(descriptors.shape[0], -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                       dir_repeats: int = DIR_REPEATS, dirs_per_repeat: int = DIRS_PER_REPEAT) -> float:
    """Mean 1-D Wasserstein distance of two equal-size point clouds over random unit directions."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"descriptor sets must have the same [num, dim] shape, got {a.shape} and {b.shape}")
    distances = []
    for _ in range(dir_repeats):
        directions = rng.standard_normal((a.shape[1], dirs_per_repeat))
        directions = (directions / np.linalg.norm(directions, axis=0, keepdims=True)).astype(np.float32).T
        # [direction, point] layout so each sort runs over contiguous memory
        projected_a = np.sort(directions @ a.T, axis=1)
        projected_b = np.sort(directions @ b.T, axis=1)
        distances.append(np.mean(np.abs(projected_a - projected_b)))
    return float(np.mean(distances))


class DescriptorSet:
    """Accumulates SWD descriptors of an image set batch by batch (so sets need not fit in memory).

    Patch positions come from `seed` alone. Giving the real and the fake set the same seed samples
    both at the same positions (common random numbers): the positions do not depend on the images,
    so each set is still a fair sample, but identical sets then score exactly 0 and the sampling
    noise of a comparison shrinks. (PGGAN drew independent positions per set.)
    """

    def __init__(self, image_shape: tuple[int, int], seed: int = 0, patches_per_image: int = PATCHES_PER_IMAGE):
        self.level_shapes = pyramid_level_shapes(image_shape)
        self.patches_per_image = patches_per_image
        self._rng = np.random.default_rng(seed)
        self._per_level = [[] for _ in self.level_shapes]
        self.num_images = 0

    def add(self, images) -> None:
        """Add a batch of NHWC images (uint8 or [-1, 1] float) of the set's shape."""
        images = to_pixel_scale(images)
        if tuple(images.shape[1:3]) != self.level_shapes[0]:
            raise ValueError(f"image batch is {images.shape[1]}x{images.shape[2]}, this set expects "
                             f"{self.level_shapes[0][0]}x{self.level_shapes[0][1]}")
        for store, level in zip(self._per_level, laplacian_pyramid(images, len(self.level_shapes))):
            store.append(sample_descriptors(level, self._rng, self.patches_per_image))
        self.num_images += images.shape[0]

    def finalize(self) -> list[np.ndarray]:
        """Normalised descriptors per level, finest first."""
        if self.num_images == 0:
            raise ValueError("no images were added to this SWD descriptor set")
        return [normalize_descriptors(np.concatenate(store)) for store in self._per_level]


def level_name(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def swd_from_descriptors(real: list[np.ndarray], fake: list[np.ndarray], level_shapes, seed: int = 0,
                         dir_repeats: int = DIR_REPEATS, dirs_per_repeat: int = DIRS_PER_REPEAT) -> dict[str, float]:
    """SWD x 1e3 per level (keys 'HxW') and their mean (key 'avg')."""
    rng = np.random.default_rng(seed)
    result = {}
    for shape, desc_real, desc_fake in zip(level_shapes, real, fake):
        result[level_name(shape)] = 1e3 * sliced_wasserstein(desc_real, desc_fake, rng, dir_repeats, dirs_per_repeat)
    result["avg"] = float(np.mean(list(result.values())))
    return result


def sliced_wasserstein_distance(real_images, fake_images, *, seed: int = 0,
                                patches_per_image: int = PATCHES_PER_IMAGE, dir_repeats: int = DIR_REPEATS,
                                dirs_per_repeat: int = DIRS_PER_REPEAT) -> dict[str, float]:
    """PGGAN SWD x 1e3 between two equal-size NHWC image sets: {'HxW': per level, ..., 'avg': mean}.

    Images are uint8 [0, 255] or float [-1, 1]. The same `seed` gives the same number.
    """
    real_images, fake_images = as_signed_unit_images(real_images), as_signed_unit_images(fake_images)
    if real_images.shape != fake_images.shape:
        raise ValueError(f"real and fake sets must have the same shape, got {real_images.shape} and {fake_images.shape}")
    sets = []
    for images in (real_images, fake_images):
        descriptor_set = DescriptorSet(images.shape[1:3], seed=seed, patches_per_image=patches_per_image)
        descriptor_set.add(images)
        sets.append(descriptor_set.finalize())
    return swd_from_descriptors(sets[0], sets[1], descriptor_set.level_shapes, seed=seed,
                                dir_repeats=dir_repeats, dirs_per_repeat=dirs_per_repeat)
