"""Prepare any folder of images: the largest centred crop at the target aspect, resized.

  python -m experiments.prepare_folder --images=my_pictures --out=data/my_set --shape=256x128
  python -m experiments.prepare_folder --images=by_class --out=data/labelled --labels_from_subfolders=style

With --labels_from_subfolders=NAME each first-level sub-folder is a class of the attribute NAME
(images directly in the root are then dropped and counted). Writes a prepared dataset (resumable,
originals untouched) that make_pipeline(source=<out>) reads; the report is printed and kept in
<out>/dataset.json.
"""
from __future__ import annotations

import argparse
import os

from experiments.prepare_danbooru import parse_shape
from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.data.prepared import PreparedWriter
from stylegan_jax.prep.images import centre_crop_box, crop_resize, load_rgb
from stylegan_jax.prep.runner import Outcome, finish, run_command, run_preparation
from stylegan_jax.utils import list_images


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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder (a prepared dataset; rerun to resume)")
    parser.add_argument("--shape", type=parse_shape, default=(512, 256), help="target HEIGHTxWIDTH")
    parser.add_argument("--min_size", type=parse_shape, default=(0, 0), help="drop images below HEIGHTxWIDTH")
    parser.add_argument("--labels_from_subfolders", default=None, metavar="ATTRIBUTE",
                        help="label each image by its first-level sub-folder, as this attribute")
    parser.add_argument("--shard_size", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (to try settings)")
    args = parser.parse_args(argv)
    return prepare_folder(args.images, args.out, shape=args.shape, label_attribute=args.labels_from_subfolders,
                          min_size=args.min_size, shard_size=args.shard_size, limit=args.limit)


if __name__ == "__main__":
    run_command(main)
