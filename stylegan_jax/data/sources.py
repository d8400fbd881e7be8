"""Where examples come from: TFDS datasets, image folders and prepared datasets, behind one interface.

`resolve_source(source, data_dir)` returns a Source whose `examples(split, process_index,
process_count)` is a tf.data.Dataset of {"image": uint8 [H, W, 3], "label": float32 [dim],
"key": string}, holding only that process's disjoint part of the split, in a fixed order. A source
that names no dataset present here (a missing directory, an unknown or unbuilt TFDS name) raises
DatasetNotFoundError, whose one-line message says what was looked for and how to get or name one.
"""
import dataclasses
import difflib
import os
from typing import Callable, Optional

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image
from tqdm import tqdm

from stylegan_jax.data import portraits_tfds, prepared
from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.data.tf_cpu import tensorflow_on_cpu
from stylegan_jax.utils import IMAGE_EXTENSIONS, list_images

FOLDER_PREFIX = "folder:"
# What tf.io.decode_image reads; other images (e.g. TIFF) must go through experiments.prepare_folder.
DECODABLE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_PROGRESS_MIN = 2000  # folders at least this large show a progress bar while being checked
_LABEL_ATTRIBUTE = "class"  # attribute name of folder labels (one class per sub-folder)


class DatasetNotFoundError(FileNotFoundError):
    """No dataset where a source points. str(error) is one line: `looked_for`, then `fix` (how to
    get the dataset or name another)."""

    def __init__(self, looked_for: str, fix: str):
        super().__init__(f"{looked_for}: {fix}")
        self.looked_for, self.fix = looked_for, fix

    def with_fix(self, fix: str) -> "DatasetNotFoundError":
        """The same error with another fix, from a caller that knows how its data is made."""
        return DatasetNotFoundError(self.looked_for, fix)


@dataclasses.dataclass(frozen=True)
class Source:
    """A resolved data source (see the module docstring for what `examples` yields)."""
    name: str
    image_shape: tuple
    label_spec: Optional[LabelSpec]
    num_examples: Callable[[str], int]               # split -> count
    examples: Callable[[str, int, int], object]      # (split, process_index, process_count) -> ds


def resolve_source(source, data_dir=None):
    """Resolves a source string: a TFDS name[/config], "folder:/path", or a prepared directory.

    A path-like string (an existing directory; one starting with /, . or ~; or a/b whose first
    part is no TFDS name) is a prepared directory. Raises DatasetNotFoundError when nothing is there.
    """
    source = os.fspath(source)
    if source.startswith(FOLDER_PREFIX):
        return _folder_source(os.path.expanduser(source[len(FOLDER_PREFIX):]))
    path = os.path.expanduser(source)
    if os.path.isdir(path) or source.startswith(("/", ".", "~")):
        return _prepared_source(path)
    registered = tfds.list_builders(with_community_datasets=False)
    if _builder_name(source) in registered:
        return _tfds_source(source, data_dir)
    if "/" in source:  # a relative path such as data/rect_anime, not "name/config" of a TFDS dataset
        return _prepared_source(path)
    raise _unknown_dataset_error(source, registered)


def _check_single_split(name, split):
    if split != "train":
        raise ValueError(f"{name} has only the split 'train', not {split!r}: use split='train'")


# --- prepared datasets -----------------------------------------------------------------------------

def check_prepared_dir(path):
    """Raises DatasetNotFoundError unless directory `path` holds a finished prepared dataset."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise DatasetNotFoundError(
            f"no prepared dataset at {path} (no directory {os.path.abspath(path)})",
            "check the path, or prepare one with `python -m experiments.prepare_danbooru` (Danbooru "
            "dumps), `prepare_faces` (photos of faces) or `prepare_folder` (any images) and "
            f"`--out=DIR`, then give DIR ({FOLDER_PREFIX}PATH reads a folder of images as it is)")
    if not prepared.is_prepared_dir(path):
        raise DatasetNotFoundError(
            f"{path} holds no finished prepared dataset (no {prepared.INFO_FILE})",
            "run the preparation tool that writes it to completion (a rerun resumes); a plain "
            f"folder of images is read as {FOLDER_PREFIX}{path}")


def _prepared_source(path):
    check_prepared_dir(path)
    info = prepared.read_prepared_info(path)

    def num_examples(split):
        _check_single_split(path, split)
        return info["num_examples"]

    def examples(split, index, count):
        _check_single_split(path, split)
        return prepared.prepared_tf_dataset(path, index, count)

    return Source(name=path, image_shape=info["image_shape"], label_spec=info["label_spec"],
                  num_examples=num_examples, examples=examples)


# --- image folders ---------------------------------------------------------------------------------

def scan_folder(path):
    """(relative image paths, class names or None, class index per image or None) of a folder.

    Labels come from sub-folders: either every image sits in a class sub-folder (>= 2 of them,
    one level deep) or all images sit directly in `path`; anything else is an error.
    """
    if not os.path.isdir(path):
        raise DatasetNotFoundError(f"image folder {path} does not exist",
                                   f"check the path after {FOLDER_PREFIX}")
    paths = list_images(path)
    if not paths:
        raise ValueError(f"no images ({' '.join(IMAGE_EXTENSIONS)}) in folder {path}: check the "
                         f"path after {FOLDER_PREFIX} and that the files are readable")
    undecodable = [p for p in paths if not p.lower().endswith(DECODABLE_EXTENSIONS)]
    if undecodable:
        raise ValueError(f"{path} holds images the pipeline cannot decode ({undecodable[0]}, ...): "
                         f"convert them with experiments.prepare_folder (reads {DECODABLE_EXTENSIONS})")
    top_level = [p for p in paths if "/" not in p]
    if len(top_level) == len(paths):
        return paths, None, None
    classes = sorted({p.split("/")[0] for p in paths if "/" in p})
    if top_level:
        raise ValueError(f"{path} has images both at the top level ({top_level[0]}, ...) and in "
                         f"sub-folders ({', '.join(classes)}): put every image in a class sub-folder, "
                         "or none (unlabelled)")
    nested = [p for p in paths if p.count("/") > 1]
    if nested:
        raise ValueError(f"{path} has images nested deeper than one class sub-folder ({nested[0]}): "
                         "labels come from ONE level of sub-folders, move the images up")
    if len(classes) == 1:
        raise ValueError(f"{path} has a single class sub-folder {classes[0]!r}: use >= 2 class "
                         "sub-folders for labels, or put the images at the top level")
    empty = sorted(name for name in os.listdir(path) if os.path.isdir(os.path.join(path, name))
                   and not name.startswith(".") and name not in classes)
    if empty:
        raise ValueError(f"class sub-folders {', '.join(empty)} of {path} hold no images: add images "
                         "or remove them")
    class_ids = [classes.index(p.split("/")[0]) for p in paths]
    return paths, classes, class_ids


def _image_size(path):
    try:
        with Image.open(path) as image:
            return image.size[1], image.size[0]  # PIL gives (width, height)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read image {path} ({e}): remove or replace the file") from None


def _folder_source(path):
    relative_paths, classes, class_ids = scan_folder(path)
    sizes = {}
    checking = tqdm(relative_paths, desc=f"checking images in {path}", unit="image",
                    disable=len(relative_paths) < _PROGRESS_MIN)
    for relative in checking:  # header reads only: cheap, and catches broken files early
        sizes.setdefault(_image_size(os.path.join(path, relative)), relative)
    if len(sizes) > 1:
        found = ", ".join(f"{h}x{w} ({name})" for (h, w), name in list(sizes.items())[:3])
        raise ValueError(f"images in {path} differ in size: {found}; bring them to one size with the "
                         "data-preparation tool first")
    image_shape = next(iter(sizes))
    label_spec = None if classes is None else LabelSpec({_LABEL_ATTRIBUTE: classes})
    dim = 0 if label_spec is None else label_spec.dim
    labels = (np.zeros([len(relative_paths), 0], np.float32) if classes is None
              else np.eye(dim, dtype=np.float32)[class_ids])

    def num_examples(split):
        _check_single_split(path, split)
        return len(relative_paths)

    def examples(split, index, count):
        _check_single_split(path, split)
        tf = tensorflow_on_cpu()
        mine = slice(index, None, count)  # every count-th file: disjoint parts that cover the folder
        files = tf.data.Dataset.from_tensor_slices({
            "file": [os.path.join(path, p) for p in relative_paths[mine]],
            "key": relative_paths[mine], "label": labels[mine]})

        def decode(item):
            image = tf.io.decode_image(tf.io.read_file(item["file"]), channels=3,
                                       expand_animations=False)
            return {"image": tf.ensure_shape(image, image_shape + (3,)), "label": item["label"],
                    "key": item["key"]}

        return files.map(decode, num_parallel_calls=tf.data.AUTOTUNE)

    return Source(name=FOLDER_PREFIX + path, image_shape=image_shape, label_spec=label_spec,
                  num_examples=num_examples, examples=examples)


# --- TFDS datasets ---------------------------------------------------------------------------------

def _tfds_label_spec(info):
    """LabelSpec of a TFDS dataset: one stored in its metadata (synthetic_portraits), a ClassLabel
    "label" (one-hot), or a dict of bool "attributes" such as celeb_a's (multi-hot); else None."""
    if info.metadata and "label_spec" in info.metadata:
        return LabelSpec.from_json(info.metadata["label_spec"])
    features = info.features
    if "label" in features and isinstance(features["label"], tfds.features.ClassLabel):
        return LabelSpec({"label": features["label"].names})
    if "attributes" in features and isinstance(features["attributes"], tfds.features.FeaturesDict):
        return LabelSpec({name: ("0", "1") for name in features["attributes"].keys()})
    return None


def _tfds_label(tf, example, label_spec):
    if label_spec is None:
        return tf.zeros([0], tf.float32)
    if "label" in example and example["label"].dtype == tf.float32:  # already a label vector
        return example["label"]
    if label_spec.names == ("label",):
        return tf.one_hot(example["label"], label_spec.dim, dtype=tf.float32)
    present = [tf.cast(example["attributes"][name], tf.float32) for name in label_spec.names]
    return tf.reshape(tf.stack([[1.0 - p, p] for p in present]), [label_spec.dim])


def _builder_name(name):
    """The TFDS builder a "name[:version][/config]" string names."""
    return name.split("/")[0].split(":")[0]


def _unknown_dataset_error(name, registered):
    close = difflib.get_close_matches(_builder_name(name), registered, n=3)
    configs = ", ".join(f"synthetic_portraits/{c.name}" for c in
                        portraits_tfds.SyntheticPortraits.BUILDER_CONFIGS[1:])
    suggestion = f" (did you mean {', '.join(close)}?)" if close else ""
    return DatasetNotFoundError(
        f"unknown dataset {name!r}{suggestion}",
        f"choose one of synthetic_portraits, {configs}, another registered TFDS dataset, "
        f"{FOLDER_PREFIX}PATH, or a prepared dataset directory")


def _tfds_source(name, data_dir):
    tensorflow_on_cpu()
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        if not isinstance(builder, portraits_tfds.SyntheticPortraits):
            raise DatasetNotFoundError(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir} and nothing downloads "
                "at run time", f"prepare it first (`tfds build {_builder_name(name)} "
                "--data_dir=...`) and pass that data_dir")
        builder.download_and_prepare()  # draws the portraits, once: later runs find them on disk
    info = builder.info
    image_shape = tuple(info.features["image"].shape[:2])
    if None in image_shape:
        raise ValueError(f"TFDS dataset {name!r} has images of varying size: crop/resize it to one "
                         "size with the data-preparation tool and train on that")
    label_spec = _tfds_label_spec(info)

    def num_examples(split):
        if split not in info.splits:
            raise ValueError(f"dataset {name!r} has no split {split!r}: choose one of "
                             f"{', '.join(info.splits)}")
        return info.splits[split].num_examples

    def examples(split, index, count):
        num_examples(split)
        tf = tensorflow_on_cpu()
        read_config = tfds.ReadConfig(add_tfds_id=True, shuffle_seed=0)
        part = tfds.even_splits(split, n=count)[index] if count > 1 else split
        dataset = builder.as_dataset(split=part, shuffle_files=False, read_config=read_config)
        return dataset.map(lambda ex: {
            "image": tf.ensure_shape(ex["image"], image_shape + (3,)),
            "label": _tfds_label(tf, ex, label_spec),
            "key": ex["key"] if "key" in ex else ex["tfds_id"],
        }, num_parallel_calls=tf.data.AUTOTUNE)

    return Source(name=name, image_shape=image_shape, label_spec=label_spec,
                  num_examples=num_examples, examples=examples)
