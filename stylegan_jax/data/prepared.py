"""On-disk format of a prepared dataset (written by the data-preparation tools, read by the pipeline).

A prepared dataset is a directory holding
  shard-00000.tfrecord, shard-00001.tfrecord, ...  tf.train.Example records
      {"image": PNG bytes of a uint8 HxWx3 image, "label": float list, "key": bytes}
  shard-00000.json, ...   the shard's keys in record order; written after its .tfrecord, so a
                           .json marks the shard complete
  dataset.json            format version, image_shape, label_spec (JSON object or null),
                           num_examples, the shard list and the caller's report; written by close()

Every file appears under its final name only once it is complete (written to a temp name in the same
directory, then os.replace'd), so a run killed at any moment leaves complete shards plus at most one
temp file. A new PreparedWriter on the same directory resumes: `done_keys` are the keys of the
complete shards, the next shard is redone from scratch. A caller that iterates its inputs in the
same order and skips `done_keys` therefore produces byte-identical shards to an uninterrupted run.
"""
import io
import json
import os
import re

import numpy as np
from PIL import Image

from stylegan_jax.atomic import is_temporary, temporary_path, write_json_atomically
from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.data.tf_cpu import tensorflow_on_cpu
from stylegan_jax.utils import read_json

FORMAT_VERSION = 1
INFO_FILE = "dataset.json"
# Keys (one per line) of the images marked bad in experiments.review; training leaves them out.
REVIEW_MARKS_FILE = "review_exclude.txt"
_SHARD_PATTERN = re.compile(r"^shard-(\d{5})\.json$")


def _shard_stem(index):
    return f"shard-{index:05d}"


def _encode_png(image):
    # PIL's PNG encoder is deterministic for fixed settings, which resumed runs rely on.
    buffer = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _serialize_example(tf, key, png_bytes, label):
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png_bytes])),
        "label": tf.train.Feature(float_list=tf.train.FloatList(value=label)),
        "key": tf.train.Feature(bytes_list=tf.train.BytesList(value=[key.encode("utf-8")])),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # deterministic=True sorts the feature map, so equal examples give equal bytes.
    return example.SerializeToString(deterministic=True)


class PreparedWriter:
    """Writes a prepared dataset in atomic shards; resumes an interrupted run in the same directory.

    Args:
      out_dir: directory to write (created if missing).
      image_shape: (H, W) of every image.
      label_spec: LabelSpec of the label vectors, or None for an unlabelled dataset.
      shard_size: examples per shard (the last shard may be shorter).
    """

    def __init__(self, out_dir, image_shape, label_spec=None, shard_size=1000):
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.out_dir = os.fspath(out_dir)
        self.image_shape = tuple(int(s) for s in image_shape)
        if len(self.image_shape) != 2 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W) with H, W >= 1, got {image_shape}")
        self.label_spec = label_spec
        self.label_dim = 0 if label_spec is None else label_spec.dim
        self.shard_size = int(shard_size)
        self._tf = tensorflow_on_cpu()
        os.makedirs(self.out_dir, exist_ok=True)
        self._shards = self._load_complete_shards()
        self.done_keys = {key for shard in self._shards for key in shard["keys"]}
        self._seen_keys = set(self.done_keys)
        self._pending_keys = []
        self._record_writer = None

    def _shard_header(self):
        label_json = None if self.label_spec is None else json.loads(self.label_spec.to_json())
        return {"format_version": FORMAT_VERSION, "image_shape": list(self.image_shape),
                "label_spec": label_json}

    def _load_complete_shards(self):
        """Reads the .json index of every complete shard; removes temp files of a killed run."""
        names = sorted(os.listdir(self.out_dir))
        for name in names:
            if is_temporary(name):  # our own half-written file: it is redone below
                os.remove(os.path.join(self.out_dir, name))
        indices = sorted(int(m.group(1)) for m in map(_SHARD_PATTERN.match, names) if m)
        if indices != list(range(len(indices))):
            raise ValueError(f"{self.out_dir}: shard indices {indices} are not 0..n-1; "
                             "this directory was not written by PreparedWriter, use a new out_dir")
        shards = []
        for index in indices:
            with open(os.path.join(self.out_dir, _shard_stem(index) + ".json"), encoding="utf-8") as f:
                shard = json.load(f)
            expected = self._shard_header()
            found = {k: shard.get(k) for k in expected}
            if found != expected:
                raise ValueError(f"{self.out_dir} holds shards written with {found}, not {expected}: "
                                 "use a new out_dir or the original settings")
            shards.append(shard)
        return shards

    def add(self, key, image, label_vector=None):
        """Appends one example. `image`: uint8 [H, W, 3]; `label_vector`: float [label_spec.dim]."""
        key = str(key)
        if key in self._seen_keys:
            raise ValueError(f"duplicate key {key!r}: every example needs a unique key "
                             "(skip writer.done_keys when resuming)")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.shape != self.image_shape + (3,):
            raise ValueError(f"image {key!r} is {image.dtype}{list(image.shape)}, expected "
                             f"uint8{list(self.image_shape + (3,))}: resize/convert before add()")
        label = np.zeros([0], np.float32) if label_vector is None else np.asarray(
            label_vector, np.float32).reshape(-1)
        if label.shape[0] != self.label_dim:
            raise ValueError(f"label of {key!r} has size {label.shape[0]}, the label spec needs "
                             f"{self.label_dim}")
        if self._record_writer is None:
            temp_path = temporary_path(self._shard_path(len(self._shards), ".tfrecord"))
            self._record_writer = self._tf.io.TFRecordWriter(temp_path)
        self._record_writer.write(
            _serialize_example(self._tf, key, _encode_png(image), label.tolist()))
        self._seen_keys.add(key)
        self._pending_keys.append(key)
        if len(self._pending_keys) == self.shard_size:
            self._finish_shard()

    def _shard_path(self, index, suffix):
        return os.path.join(self.out_dir, _shard_stem(index) + suffix)

    def _finish_shard(self):
        index = len(self._shards)
        self._record_writer.close()
        self._record_writer = None
        record_path = self._shard_path(index, ".tfrecord")
        os.replace(temporary_path(record_path), record_path)
        shard = dict(self._shard_header(), keys=self._pending_keys)
        write_json_atomically(self._shard_path(index, ".json"), shard)  # marks the shard complete
        self._shards.append(shard)
        self.done_keys.update(self._pending_keys)
        self._pending_keys = []

    def close(self, report=None):
        """Completes the last shard and writes dataset.json (with the caller's `report` dict)."""
        if self._pending_keys:
            self._finish_shard()
        info = dict(self._shard_header(),
                    num_examples=sum(len(s["keys"]) for s in self._shards),
                    shards=[{"file": _shard_stem(i) + ".tfrecord", "num_examples": len(s["keys"])}
                            for i, s in enumerate(self._shards)],
                    report=report or {})
        write_json_atomically(os.path.join(self.out_dir, INFO_FILE), info)
        return info


def is_prepared_dir(path):
    """True if `path` is a directory holding a finished prepared dataset."""
    return os.path.isfile(os.path.join(os.fspath(path), INFO_FILE))


def read_prepared_info(path):
    """Returns dataset.json of a prepared dataset, with "label_spec" as a LabelSpec (or None)."""
    info_path = os.path.join(os.fspath(path), INFO_FILE)
    info = read_json(info_path, f"{path} is not a finished prepared dataset (no {INFO_FILE}): "
                                "run the preparation tool to completion first")
    if info.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{info_path} has format_version {info.get('format_version')}, this "
                         f"code reads {FORMAT_VERSION}: re-run the preparation tool")
    info["image_shape"] = tuple(info["image_shape"])
    if info["label_spec"] is not None:
        info["label_spec"] = LabelSpec.from_json(info["label_spec"])
    return info


def prepared_tf_dataset(path, process_index=0, process_count=1):
    """tf.data.Dataset of {"image": uint8 [H,W,3], "label": float32 [dim], "key": string}.

    Records are read in file order; with process_count > 1 only every process_count-th record
    (starting at process_index) is kept, before decoding, so processes read disjoint parts.
    """
    tf = tensorflow_on_cpu()
    info = read_prepared_info(path)
    height, width = info["image_shape"]
    label_dim = 0 if info["label_spec"] is None else info["label_spec"].dim
    files = [os.path.join(os.fspath(path), shard["file"]) for shard in info["shards"]]
    features = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([label_dim], tf.float32),
        "key": tf.io.FixedLenFeature([], tf.string),
    }

    def decode(record):
        example = tf.io.parse_single_example(record, features)
        image = tf.io.decode_png(example["image"], channels=3)
        image = tf.ensure_shape(image, [height, width, 3])
        return {"image": image, "label": example["label"], "key": example["key"]}

    records = tf.data.TFRecordDataset(files)
    if process_count > 1:
        records = records.shard(process_count, process_index)
    return records.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
