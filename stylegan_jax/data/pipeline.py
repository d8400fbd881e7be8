"""One input pipeline for every source: host-local numpy batches at the training stage's resolution.

    for batch in make_pipeline("synthetic_portraits", resolution=(16, 8), batch_size=32):
        batch["image"]  # float32 [32, 16, 8, 3] in [-1, 1]
        batch["label"]  # float32 [32, label_spec.dim] (width 0 when unlabelled)
        batch["key"]    # bytes [32]

Images are stored at one size and area-averaged down to the stage resolution (a block mean, as
PGGAN's multi-resolution data is made by repeated 2x2 averaging). TensorFlow runs on the CPU only.
"""
import os

import tensorflow_datasets as tfds

from stylegan_jax.data.sources import resolve_source
from stylegan_jax.data.tf_cpu import tensorflow_on_cpu

# Decoded images up to this many bytes stay in memory after the first epoch (no re-decoding).
_CACHE_BYTES = 1 << 30
# Shuffle buffers hold decoded images; bound their memory, but never below a useful size.
_SHUFFLE_BYTES, _MIN_SHUFFLE = 512 << 20, 1000


def downsample_factors(stored_shape, resolution, source_name="dataset"):
    """Per-axis integer power-of-2 factors from the stored (H, W) to `resolution` (h, w)."""
    (height, width), (target_h, target_w) = stored_shape, tuple(int(r) for r in resolution)
    if target_h < 1 or target_w < 1:
        raise ValueError(f"resolution must be positive (h, w), got {resolution}")
    if target_h > height or target_w > width:
        raise ValueError(f"images of {source_name} are {height}x{width}, too small for the requested "
                         f"{target_h}x{target_w}: use a larger dataset config or a smaller resolution")
    factors = (height // target_h, width // target_w)
    for size, target, factor in zip((height, width), (target_h, target_w), factors):
        if size != target * factor or factor & (factor - 1):
            raise ValueError(f"cannot area-downsample {source_name} from {height}x{width} to "
                             f"{target_h}x{target_w}: each axis must shrink by a power of 2 "
                             "(prepare the data at a matching size)")
    return factors


def area_downsample(images, factors):
    """Block mean over factor_h x factor_w pixel blocks of images [B, H, W, C] (a tf.Tensor)."""
    tf = tensorflow_on_cpu()
    factor_h, factor_w = factors
    if factor_h == factor_w == 1:
        return images
    _, height, width, channels = images.shape
    blocks = tf.reshape(images, [-1, height // factor_h, factor_h, width // factor_w, factor_w,
                                 channels])
    return tf.reduce_mean(blocks, axis=[2, 4])


def _read_exclude_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"exclude file {path} does not exist: give a text file of keys, "
                                "one per line")
    with open(path, encoding="utf-8") as f:
        return sorted({line.strip() for line in f if line.strip()})


def _default_process(process_index, process_count):
    if process_index is None or process_count is None:
        import jax  # pylint: disable=import-outside-toplevel  (only when not given explicitly)
        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is not in [0, process_count="
                         f"{process_count})")
    return int(process_index), int(process_count)


def dataset_info(source, data_dir=None, split="train"):
    """{"image_shape": (H, W) stored, "label_spec": LabelSpec or None, "num_examples": int}.

    Raises sources.DatasetNotFoundError if `source` names no dataset present here; that check
    imports no TensorFlow (only a TFDS source needs it), so a command can make it first, cheaply.
    """
    resolved = resolve_source(source, data_dir)
    return {"image_shape": tuple(resolved.image_shape), "label_spec": resolved.label_spec,
            "num_examples": resolved.num_examples(split)}


def make_pipeline(source, *, resolution, batch_size, split="train", shuffle=True, flip=False,
                  seed=0, process_index=None, process_count=None, repeat=True, exclude=None,
                  data_dir=None, drop_remainder=True):
    """Iterator of host-local batches {"image", "label", "key"} (numpy) from `source`.

    Args:
      source: "synthetic_portraits[/config]", another TFDS name, "folder:/path" or a prepared
        dataset directory (see stylegan_jax.data.sources; DatasetNotFoundError if it names none).
      resolution: (h, w) of the current training stage; the stored size divided by powers of 2.
      batch_size: examples per batch on this process.
      split: TFDS split ("train", "test", ...); folders and prepared datasets have only "train".
      shuffle: shuffle examples (reproducibly from `seed`).
      flip: randomly mirror half of the images left-right (reproducibly from `seed`).
      seed: seed of shuffling and flipping.
      process_index, process_count: this process's disjoint part of the data; default to
        jax.process_index() / jax.process_count().
      repeat: loop over the data forever (else one pass).
      exclude: path of a text file of keys (one per line) to leave out.
      data_dir: TFDS data directory (default: see portraits_tfds.default_data_dir / TFDS).
      drop_remainder: drop a last incomplete batch (keeps shapes static for jit).
    """
    process_index, process_count = _default_process(process_index, process_count)
    resolved = resolve_source(source, data_dir)
    tf = tensorflow_on_cpu()
    factors = downsample_factors(resolved.image_shape, resolution, resolved.name)
    num_examples = resolved.num_examples(split)
    height, width = resolved.image_shape
    image_bytes = height * width * 3

    dataset = resolved.examples(split, process_index, process_count)
    if exclude is not None:
        excluded = _read_exclude_file(exclude)
        if excluded:
            table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(excluded), tf.ones([len(excluded)], tf.int32)), default_value=0)
            dataset = dataset.filter(lambda ex: table.lookup(ex["key"]) == 0)
    if num_examples * image_bytes / process_count <= _CACHE_BYTES:
        dataset = dataset.cache()
    if shuffle:
        buffer = min(max(num_examples // process_count, 1),
                     max(_MIN_SHUFFLE, _SHUFFLE_BYTES // image_bytes))
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    # Batch first, then convert: one vectorised map per batch is far cheaper than per image.
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder).enumerate()

    def to_training_batch(batch_index, batch):
        images = tf.cast(batch["image"], tf.float32)
        images = area_downsample(images, factors)
        if flip:
            # Stateless randomness keyed by (seed, batch number): the same flips on every run.
            coins = tf.random.stateless_uniform([tf.shape(images)[0]], seed=tf.stack(
                [tf.cast(seed, tf.int64), batch_index]))
            images = tf.where(coins[:, None, None, None] < 0.5, images[:, :, ::-1, :], images)
        return {"image": images / 127.5 - 1.0, "label": batch["label"], "key": batch["key"]}

    dataset = dataset.map(to_training_batch, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return iter(tfds.as_numpy(dataset))

