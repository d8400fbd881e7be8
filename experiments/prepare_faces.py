"""Prepare a folder of portraits as face crops: the face plus the same height below it (2:1 at 512x256).

  python -m experiments.prepare_faces --images=my_anime_art --detector=animeface --out=data/art_faces
  python -m experiments.prepare_faces --images=ffhq --landmarks=ffhq/ffhq-dataset-v2.json --out=data/ffhq_8x4
  python -m experiments.prepare_faces --images=photos --detector=opencv --out=data/photos_8x4

With --landmarks the crop follows FFHQ's landmark alignment (rotated to level the eyes, see
stylegan_jax/prep/landmarks.py); without, a detector gives axis-aligned boxes cropped as in
stylegan_jax/prep/crops.py: animeface for drawn anime art, OpenCV's bundled frontal-face cascade
(or --cascade) for photos. The report says how many images had a face and how many of those had
room below it. Writes a prepared dataset (resumable, originals untouched), like prepare_danbooru.
"""
from __future__ import annotations

import os

import numpy as np
from absl import app, flags

from experiments import prepare_danbooru
from stylegan_jax.data.prepared import PreparedWriter
from stylegan_jax.prep import crops, landmarks
from stylegan_jax.prep.images import load_rgb
from stylegan_jax.prep.runner import Outcome, finish, run_preparation
from stylegan_jax.utils import exit_with_error, list_images

FLAGS = flags.FLAGS


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
    return finish(writer, summary, tool="prepare_faces", settings=settings, **room_below(summary))


def room_below(summary: dict) -> dict:
    """images_with_face: the readable images with a detected (or landmarked) face;
    images_with_room_below: those that gave a crop (a face whose crop, with the part below, fits)."""
    not_a_face = ("no_face_detected", "image_missing", "unreadable_image")
    with_face = summary["items"] - sum(summary["dropped"].get(reason, 0) for reason in not_a_face)
    return {"images_with_face": with_face,
            "images_with_room_below": summary["items"] - sum(summary["dropped"].values())}


def prepare_faces_with_detector(images: str, out: str, detector: crops.FaceDetector, *, shape=(512, 256),
                                crop_settings: crops.CropSettings = crops.CropSettings(), shard_size: int = 1000,
                                limit: int | None = None, checker: crops.FaceDetector | None = None) -> dict:
    """Detects and crops the faces of every image under `images`; returns the report. checker:
    the crop check's detector (crops.crop_faces)."""
    shape = tuple(int(s) for s in shape)
    paths = list_images(images)[:limit]

    def process(relative_path) -> Outcome:
        image = load_rgb(os.path.join(images, relative_path), exif_transpose=True)
        examples, dropped, counts = crops.crop_faces(image, relative_path, detector, shape, crop_settings, checker)
        return Outcome([(key, pixels, None) for key, pixels in examples], dropped, counts)

    settings = {"shape": list(shape), "mode": type(detector).__name__, "crop": vars(crop_settings)}
    writer = PreparedWriter(out, shape, None, shard_size=shard_size)
    summary = run_preparation(((path, path) for path in paths), process, writer, settings=settings,
                              total=len(paths), desc="faces")
    return finish(writer, summary, tool="prepare_faces", settings=settings, **room_below(summary))


def prepare(images: str, out: str, *, shape=(512, 256), min_confidence: float = 0.0,
            min_face_size: float | None = None, margin: float | None = None, max_faces: int = 1,
            check_crops: float = 0.0, shard_size: int = 1000, limit: int | None = None,
            landmarks: str | None = None, detector: str = "opencv", cascade: str | None = None,
            boxes: str | None = None) -> dict:
    """The command with its flags' values (same names and defaults): crops by the landmarks file if
    given, else by the detector; returns the report."""
    settings = prepare_danbooru.crop_settings(shape, min_confidence, min_face_size, margin, max_faces, detector,
                                              check_crops)
    if landmarks:
        return prepare_faces_from_landmarks(images, landmarks, out, shape=shape, min_face_size=settings.min_face_size,
                                            shard_size=shard_size, limit=limit)
    face_detector, checker = prepare_danbooru.make_detectors(detector, cascade, boxes, check_crops)
    return prepare_faces_with_detector(images, out, face_detector, shape=shape, crop_settings=settings,
                                       shard_size=shard_size, limit=limit, checker=checker)


def define_flags() -> None:
    """Defines the command's flags. Only run as a program: tests import this module beside the
    other prepare_* tools, and absl refuses a flag name defined twice in one process."""
    flags.DEFINE_string("images", None, "image root (landmark paths are relative to it)", required=True)
    prepare_danbooru.define_crop_flags()
    flags.adopt_module_key_flags(prepare_danbooru)  # --help lists them with this command's flags
    flags.DEFINE_string("landmarks", None, "ffhq-dataset-v2.json or {path: 68 [x, y] points}")
    flags.DEFINE_enum("detector", "opencv", ["opencv", "animeface", "boxes"],
                      "without --landmarks: opencv (a cascade; the bundled frontal face one by default, for "
                      "photos), animeface (drawn anime faces) or boxes (--boxes)")
    flags.DEFINE_string("cascade", None, "OpenCV cascade XML (default: haarcascade_frontalface_default)")
    flags.DEFINE_string("boxes", None, "JSON {image path: [[x, y, w, h, confidence], ...]}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        prepare(FLAGS.images, FLAGS.out, shape=FLAGS.shape, min_confidence=FLAGS.min_confidence,
                min_face_size=FLAGS.min_face_size, margin=FLAGS.margin, max_faces=FLAGS.max_faces,
                check_crops=FLAGS.check_crops, shard_size=FLAGS.shard_size, limit=FLAGS.limit, landmarks=FLAGS.landmarks, detector=FLAGS.detector,
                cascade=FLAGS.cascade, boxes=FLAGS.boxes)
    except (ValueError, OSError, ImportError) as e:  # bad input, a missing file or optional package
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
