"""Write a labelled grid of dataset images, to see what the data is.

  python -m experiments.preview_data --dataset=synthetic_portraits --out=grid.png
  python -m experiments.preview_data --dataset=synthetic_portraits/128x64 --num=16 --boxes --out=g.png
  python -m experiments.preview_data --dataset=folder:/my/images --size=32x16 --out=g.png

Images come through make_pipeline (so the grid shows exactly what training sees, at --size if
given) and are enlarged to at least --cell_width pixels wide; each cell's labels are written under
it. --boxes draws the ground-truth face/eye/mouth boxes of synthetic portraits.
"""
import math
import os

import numpy as np
from absl import app, flags
from PIL import Image, ImageDraw, ImageFont

from experiments.prepare_danbooru import parse_shape
from stylegan_jax.atomic import atomic_write
from stylegan_jax.data import synthetic_portraits
from stylegan_jax.data.pipeline import dataset_info, make_pipeline
from stylegan_jax.utils import exit_with_error, to_uint8

FLAGS = flags.FLAGS

BOX_COLORS = {"face": (255, 255, 0), "left_eye": (0, 255, 255), "right_eye": (0, 255, 255),
              "mouth": (255, 0, 255)}
_LINE_HEIGHT = 12


def label_lines(label_spec, label):
    """Short caption lines: "blonde hair" for a class attribute, "mouth_open" when a 0/1 one is 1."""
    if label_spec is None:
        return []
    lines = []
    for name, value in label_spec.decode(label).items():
        if label_spec.classes(name) == ("0", "1"):
            if value == "1":
                lines.append(name)
        else:
            lines.append(f"{value} {name.split('_')[0]}")
    return lines


def portrait_boxes(key, stored_shape):
    """Boxes of a synthetic portrait from its key "SEED-INDEX" (it is redrawn: exact and cheap)."""
    seed, index = (int(part) for part in key.decode().split("-"))
    return synthetic_portraits.generate(seed, [index], stored_shape)["boxes"][0]


def make_grid(images, captions, boxes=None, columns=8, cell_width=128):
    """uint8 grid image of images [N,H,W,3] with caption lines under each (and optional boxes)."""
    num, height, width, _ = images.shape
    scale = max(1, math.ceil(cell_width / width))
    cell_h, cell_w = height * scale, width * scale
    text_h = _LINE_HEIGHT * max([len(c) for c in captions] + [1]) + 4
    rows = math.ceil(num / columns)
    grid = Image.new("RGB", (columns * (cell_w + 4), rows * (cell_h + text_h + 4)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=11)
    for i in range(num):
        left = (i % columns) * (cell_w + 4) + 2
        top = (i // columns) * (cell_h + text_h + 4) + 2
        grid.paste(Image.fromarray(images[i]).resize((cell_w, cell_h), Image.NEAREST), (left, top))
        if boxes is not None:
            for name, (ymin, xmin, ymax, xmax) in zip(synthetic_portraits.BOX_NAMES, boxes[i]):
                x0, y0 = left + xmin * cell_w, top + ymin * cell_h
                draw.rectangle([x0, y0, max(x0, left + xmax * cell_w - 1),
                                max(y0, top + ymax * cell_h - 1)], outline=BOX_COLORS[name])
        for line, text in enumerate(captions[i]):
            draw.text((left, top + cell_h + 2 + line * _LINE_HEIGHT), text, fill=(0, 0, 0), font=font)
    return grid


def preview(dataset, out, num=32, size=None, boxes=False, columns=8, cell_width=128, split="train",
            seed=0, data_dir=None):
    """Writes the grid PNG (atomically) and returns its path."""
    info = dataset_info(dataset, data_dir=data_dir, split=split)
    resolution = parse_shape(size) if size else info["image_shape"]
    if boxes and not dataset.startswith("synthetic_portraits"):
        raise ValueError(f"--boxes needs a synthetic_portraits dataset (it has ground-truth boxes), "
                         f"not {dataset!r}")
    num = min(num, info["num_examples"])
    batch = next(make_pipeline(dataset, resolution=resolution, batch_size=num, split=split, seed=seed,
                               process_index=0, process_count=1, repeat=False, data_dir=data_dir))
    images = to_uint8(batch["image"])
    captions = [label_lines(info["label_spec"], label) for label in batch["label"]]
    box_array = (np.stack([portrait_boxes(key, info["image_shape"]) for key in batch["key"]])
                 if boxes else None)
    grid = make_grid(images, captions, box_array, columns, cell_width)
    out = os.path.abspath(out)
    return atomic_write(out, grid.save)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        path = preview(FLAGS.dataset, FLAGS.out, FLAGS.num, FLAGS.size, FLAGS.boxes, FLAGS.columns,
                       FLAGS.cell_width, FLAGS.split, FLAGS.seed, FLAGS.data_dir)
    except (FileNotFoundError, ValueError) as e:  # a missing dataset, a size or split it lacks
        exit_with_error(e)
    print(f"wrote {path}")


def define_flags():
    """Flags are defined only when run as a program, so importing this module (tests, other
    tools) never collides with another entry point's flags of the same name."""
    flags.DEFINE_string("dataset", "synthetic_portraits", "Source: TFDS name, folder:PATH or prepared dir.")
    flags.DEFINE_string("out", "grid.png", "Output PNG path.")
    flags.DEFINE_integer("num", 32, "Number of images.")
    flags.DEFINE_string("size", None, "HxW to show (area-downsampled); default: the stored size.")
    flags.DEFINE_boolean("boxes", False, "Draw face/eye/mouth boxes (synthetic_portraits only).")
    flags.DEFINE_integer("columns", 8, "Images per row.")
    flags.DEFINE_integer("cell_width", 128, "Enlarge images (nearest) to at least this width.")
    flags.DEFINE_string("split", "train", "Dataset split.")
    flags.DEFINE_integer("seed", 0, "Shuffle seed (which images are shown).")
    flags.DEFINE_string("data_dir", None, "TFDS data directory.")


if __name__ == "__main__":
    define_flags()
    app.run(main)
