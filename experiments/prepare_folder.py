"""Prepare any folder of images: the largest centred crop at the target aspect, resized.

  python -m experiments.prepare_folder --images=my_pictures --out=data/my_set --shape=256x128
  python -m experiments.prepare_folder --images=by_class --out=data/labelled --labels_from_subfolders=style

With --labels_from_subfolders=NAME each first-level sub-folder is a class of the attribute NAME
(images directly in the root are then dropped and counted). Writes a prepared dataset (resumable,
originals untouched) that make_pipeline(source=<out>) reads; the report is printed and kept in
<out>/dataset.json.
"""
from __future__ import annotations

import os

from absl import app, flags

from experiments import prepare_danbooru
from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.data.prepared import PreparedWriter
from stylegan_jax.prep.images import centre_crop_box, crop_resize, load_rgb
from stylegan_jax.prep.runner import Outcome, finish, run_preparation
from stylegan_jax.utils import exit_with_error, list_images

FLAGS = flags.FLAGS


def prepare_folder(images: str, out: str, *, shape=(512, 256), label_attribute: str | None = None,
                   min_size=(0, 0), shard_size: int = 1000, limit: int | None = None) -> dict:
    """Centre-crops and resizes every image under `images` into the prepared dataset `out`.

    label_attribute: name the first-level sub-folders' attribute to label by them (None: no labels).
    min_size: (H, W) an image must have at least (smaller ones are dropped as "too_small")."""
    shape = tuple(int(s) for s in shape)
    paths = list_images(images)[:limit]
    spec = None
    if label_attribute:
        classes = sorted({path.split("/")[0] for path in paths if "/" in path})
        if len(classes) < 2:
            raise ValueError(f"labels from sub-folders need >= 2 class folders under {images!r}, found {classes}: "
                             "put each class's images in its own sub-folder, or drop --labels_from_subfolders")
        spec = LabelSpec({label_attribute: classes})

    def process(relative_path) -> Outcome:
        label = None
        if spec is not None:
            if "/" not in relative_path:
                return Outcome(dropped="not_in_a_class_folder")
            label = spec.encode({label_attribute: relative_path.split("/")[0]})
        image = load_rgb(os.path.join(images, relative_path), exif_transpose=True)
        if image.height < min_size[0] or image.width < min_size[1]:
            return Outcome(dropped="too_small")
        counts = {f"label:{spec.format(label)}": 1} if spec is not None else {}
        return Outcome([(relative_path, crop_resize(image, centre_crop_box(image.size, shape), shape), label)],
                       counts=counts)

    settings = {"shape": list(shape), "label_attribute": label_attribute, "min_size": list(min_size)}
    writer = PreparedWriter(out, shape, spec, shard_size=shard_size)
    summary = run_preparation(((path, path) for path in paths), process, writer, settings=settings,
                              total=len(paths), desc="folder")
    return finish(writer, summary, tool="prepare_folder", settings=settings)


def define_flags() -> None:
    """Defines the command's flags. Only run as a program: tests import this module beside the
    other prepare_* tools, and absl refuses a flag name defined twice in one process."""
    flags.DEFINE_string("images", None, "folder of images (searched recursively)", required=True)
    flags.DEFINE_string("out", None, "output folder (a prepared dataset; rerun to resume)", required=True)
    prepare_danbooru.define_shape("shape", "512x256", "target HEIGHTxWIDTH")
    prepare_danbooru.define_shape("min_size", "0x0", "drop images below HEIGHTxWIDTH")
    flags.adopt_module_key_flags(prepare_danbooru)  # --help lists them with this command's flags
    flags.DEFINE_string("labels_from_subfolders", None,
                        "ATTRIBUTE: label each image by its first-level sub-folder, as this attribute")
    flags.DEFINE_integer("shard_size", 1000, "examples per shard file")
    flags.DEFINE_integer("limit", None, "only the first N images (to try settings)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        prepare_folder(FLAGS.images, FLAGS.out, shape=FLAGS.shape, label_attribute=FLAGS.labels_from_subfolders,
                       min_size=FLAGS.min_size, shard_size=FLAGS.shard_size, limit=FLAGS.limit)
    except (ValueError, OSError, ImportError) as e:  # bad input, a missing file or optional package
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
