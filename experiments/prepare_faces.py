"""Prepare FFHQ-style photos as face crops: the face plus the same height below it (2:1 at 512x256).

  python -m experiments.prepare_faces --images=ffhq --landmarks=ffhq/ffhq-dataset-v2.json --out=data/ffhq_8x4
  python -m experiments.prepare_faces --images=photos --detector=opencv --out=data/photos_8x4

With --landmarks the crop follows FFHQ's landmark alignment (rotated to level the eyes, see
stylegan_jax/prep/landmarks.py); without, OpenCV's bundled frontal-face cascade (or --cascade) gives
axis-aligned boxes cropped as in stylegan_jax/prep/crops.py. The report says how many photos had
room below the face. Writes a prepared dataset (resumable, originals untouched), like
prepare_danbooru.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from experiments.prepare_danbooru import add_crop_flags, crop_settings_from
from stylegan_jax.data.prepared import PreparedWriter
from stylegan_jax.prep import crops, landmarks
from stylegan_jax.prep.images import load_rgb
from stylegan_jax.prep.runner import Outcome, finish, run_command, run_preparation
from stylegan_jax.utils import list_images


def prepare_faces_from_landmarks(images: str, landmarks_file: str, out: str, *, shape=(512, 256),
                                 min_face_size: float = 0.0, shard_size: int = 1000, limit: int | None = None) -> dict:
    """Crops every photo listed in landmarks_file (paths relative to `images`); returns the report.

    min_face_size: the least face-square side (2 |x| in FFHQ's terms) in pixels."""
    shape = tuple(int(s) for s in shape)
    faces = landmarks.read_landmarks(landmarks_file)[:limit]

    def process(item) -> Outcome:
        relative_path, points = item
        crop, square = landmarks.face_quad(points, shape)
        if np.hypot(*(square[3] - square[0])) < min_face_size:
            return Outcome(dropped=crops.REJECT_TOO_SMALL)  # cheap test first: no decoding needed
        image = load_rgb(os.path.join(images, relative_path))
        if not landmarks.quad_inside(crop, image.size):
            inside = landmarks.quad_inside(square, image.size)
            return Outcome(dropped=crops.REJECT_NO_ROOM_BELOW if inside else crops.REJECT_OUTSIDE)
        return Outcome([(relative_path, landmarks.crop_quad(image, crop, shape), None)])

    settings = {"shape": list(shape), "mode": "landmarks", "min_face_size": min_face_size}
    writer = PreparedWriter(out, shape, None, shard_size=shard_size)
    summary = run_preparation(((face[0], face) for face in faces), process, writer, settings=settings,
                              total=len(faces), desc="faces")
    return finish(writer, summary, tool="prepare_faces", settings=settings,
                  images_with_room_below=summary["items"] - sum(summary["dropped"].values()))


def prepare_faces_with_detector(images: str, out: str, detector: crops.FaceDetector, *, shape=(512, 256),
                                crop_settings: crops.CropSettings = crops.CropSettings(), shard_size: int = 1000,
                                limit: int | None = None) -> dict:
    """Detects and crops the faces of every image under `images`; returns the report."""
    shape = tuple(int(s) for s in shape)
    paths = list_images(images)[:limit]

    def process(relative_path) -> Outcome:
        image = load_rgb(os.path.join(images, relative_path), exif_transpose=True)
        examples, dropped, counts = crops.crop_faces(image, relative_path, detector, shape, crop_settings)
        return Outcome([(key, pixels, None) for key, pixels in examples], dropped, counts)

    settings = {"shape": list(shape), "mode": type(detector).__name__, "crop": vars(crop_settings)}
    writer = PreparedWriter(out, shape, None, shard_size=shard_size)
    summary = run_preparation(((path, path) for path in paths), process, writer, settings=settings,
                              total=len(paths), desc="faces")
    return finish(writer, summary, tool="prepare_faces", settings=settings,
                  images_with_room_below=summary["items"] - sum(summary["dropped"].values()))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="image root (landmark paths are relative to it)")
    add_crop_flags(parser, default_margin=0.1)
    parser.add_argument("--landmarks", default=None, help="ffhq-dataset-v2.json or {path: 68 [x, y] points}")
    parser.add_argument("--detector", choices=("opencv", "boxes"), default="opencv",
                        help="without --landmarks: OpenCV cascade (bundled frontal face by default)")
    parser.add_argument("--cascade", default=None, help="OpenCV cascade XML (default: haarcascade_frontalface_default)")
    parser.add_argument("--boxes", default=None, help="JSON {image path: [[x, y, w, h, confidence], ...]}")
    args = parser.parse_args(argv)
    settings = crop_settings_from(args)
    if args.landmarks:
        return prepare_faces_from_landmarks(args.images, args.landmarks, args.out, shape=args.shape,
                                            min_face_size=settings.min_face_size, shard_size=args.shard_size,
                                            limit=args.limit)
    detector = crops.make_detector(args.detector, cascade=args.cascade, boxes=args.boxes)
    return prepare_faces_with_detector(args.images, args.out, detector, shape=args.shape, crop_settings=settings,
                                       shard_size=args.shard_size, limit=args.limit)


if __name__ == "__main__":
    run_command(main)
