"""Face crops at the training aspect ratio, and the face detectors that feed them.

The recipe: crop the face plus the same height again below it, which at 512x256 (H x W) is a 2:1
crop whose upper half is the face (the face square plus one square below). Geometry, in pixels:

  1. the detector's face box (x, y, w, h), grown by `margin` * its size on every side (detectors
     box the face tightly; a margin keeps hair and chin);
  2. made square, side s = max(w', h'), around the box centre: the face region;
  3. extended downward: crop height = s * (1 + below) with below = 1 ("the same below"), top at
     the face region's top; crop width = crop height * W / H, centred on the face
     (for 2:1: width = s, so the crop is exactly the face square plus one more square below).

A detection is rejected, in this order, for confidence < min_confidence, face side
(max(w, h) of the raw box) < min_face_size, or a crop leaving the image (no padding: padded
borders would teach the generator to draw them): "no_room_below" when the face square itself fits,
"crop_outside_image" otherwise. With a crop check (check_crop_min_confidence > 0) an accepted
face is then rejected as "no_character_in_crop" when a detector, run again on the crop's face
square at the training resolution, finds no face at least that sure there: a second look, at what
the generator will see, that drops detections on things that are not a character's face.

Margins: AnimeFace boxes run from the brows to the chin; margin 0.4 keeps the whole head (hair
crown, hairbands) in the face square of drawn characters (docs/images/anime_crops.jpg shows real
crops at 0.2, 0.3, 0.4); 0.3 for OpenCV's frontal-face cascade, whose boxes include the forehead.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

from stylegan_jax.prep.images import crop_resize
from stylegan_jax.utils import read_json

REJECT_LOW_CONFIDENCE = "face_low_confidence"
REJECT_TOO_SMALL = "face_too_small"
REJECT_NO_ROOM_BELOW = "no_room_below"
REJECT_OUTSIDE = "crop_outside_image"
REJECT_NO_CHARACTER = "no_character_in_crop"

# --margin's default per detector (see the module doc); boxes from another tool: as for animeface.
DEFAULT_MARGINS = {"animeface": 0.4, "opencv": 0.3, "boxes": 0.4}


@dataclasses.dataclass(frozen=True)
class Detection:
    """A face box in image pixels (x, y = top-left corner) with the detector's confidence."""
    x: float
    y: float
    width: float
    height: float
    confidence: float = 1.0


def face_crop_box(face: Detection, shape: tuple[int, int], *, margin: float = 0.0,
                  below: float = 1.0) -> tuple[float, float, float, float]:
    """The (left, top, right, bottom) crop for a face box at aspect shape = (H, W); see module doc."""
    target_height, target_width = shape
    grown_width = face.width * (1 + 2 * margin)
    grown_height = face.height * (1 + 2 * margin)
    side = max(grown_width, grown_height)
    centre_x = face.x + face.width / 2
    centre_y = face.y + face.height / 2
    top = centre_y - side / 2
    crop_height = side * (1 + below)
    crop_width = crop_height * target_width / target_height
    left = centre_x - crop_width / 2
    return (left, top, left + crop_width, top + crop_height)


def box_inside(box, image_size: tuple[int, int], tolerance: float = 1e-6) -> bool:
    """Whether (left, top, right, bottom) lies inside an image of PIL size (width, height)."""
    left, top, right, bottom = box
    width, height = image_size
    return left >= -tolerance and top >= -tolerance and right <= width + tolerance and bottom <= height + tolerance


def select_face_crops(detections: Sequence[Detection], image_size: tuple[int, int], shape: tuple[int, int], *,
                      min_confidence: float = 0.0, min_face_size: float = 0.0, margin: float = 0.0,
                      below: float = 1.0, max_faces: int = 1):
    """Checks every detection; returns (crop boxes of the accepted faces, most confident first, at
    most max_faces; {rejection reason: number of faces}). Ties keep the detector's order."""
    order = sorted(range(len(detections)), key=lambda i: -detections[i].confidence)
    accepted, rejected = [], {}
    for index in order:
        face = detections[index]
        box = face_crop_box(face, shape, margin=margin, below=below)
        if face.confidence < min_confidence:
            reason = REJECT_LOW_CONFIDENCE
        elif max(face.width, face.height) < min_face_size:
            reason = REJECT_TOO_SMALL
        elif not box_inside(box, image_size):
            face_square = face_crop_box(face, (1, 1), margin=margin, below=0.0)
            reason = REJECT_NO_ROOM_BELOW if box_inside(face_square, image_size) else REJECT_OUTSIDE
        else:
            if len(accepted) < max_faces:
                accepted.append(box)
            continue
        rejected[reason] = rejected.get(reason, 0) + 1
    return accepted, rejected


class FaceDetector(Protocol):
    """Anything that finds faces: detect(rgb PIL image, key) -> list of Detection.

    `key` names the image (a post id, a relative path), for detectors that look boxes up."""

    def detect(self, image: Image.Image, key: str) -> list[Detection]: ...


class KnownBoxDetector:
    """Boxes known in advance, by image key: for tests, and for boxes from an external detector.

    File form (JSON): {"<key>": [[x, y, width, height, confidence], ...], ...}; a missing key
    means no face."""

    def __init__(self, boxes: dict[str, Sequence[Sequence[float]]]):
        self.boxes = {str(key): [Detection(*map(float, box)) for box in value] for key, value in boxes.items()}

    @classmethod
    def from_file(cls, path: str) -> "KnownBoxDetector":
        return cls(read_json(path, f"box file {path!r} not found: give a JSON file "
                                   "{\"key\": [[x, y, width, height, confidence], ...]}"))

    def detect(self, image, key):
        return list(self.boxes.get(str(key), []))


class AnimeFaceDetector:
    """AnimeFace 2009 (nvxs, from the `animeface` package), called through its C library
    (stylegan_jax/prep/animeface.py); confidence is its likelihood (0..1).

    The library is checked on a known image when the detector is made: a broken or missing one
    raises DetectorBroken (an ImportError naming the install) instead of finding no face."""

    def __init__(self):
        from stylegan_jax.prep import animeface
        self._library = animeface.NvxsLibrary()
        animeface.verify(self._library)

    def detect(self, image, key):
        found = self._library.detect(np.asarray(image.convert("RGB")))
        return [Detection(float(x), float(y), float(w), float(h), likelihood)
                for likelihood, (x, y, w, h) in found]


OPENCV_INSTALL = "pip install opencv-python-headless==4.14.0.94"


def _import_cv2():
    """cv2 with the cascade classifier (OpenCV 4.x); an ImportError naming the install otherwise."""
    try:
        import cv2  # optional dependency
    except ImportError as error:
        raise ImportError(f"OpenCV face detection needs cv2: {OPENCV_INSTALL}") from error
    if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 moved it out of the main package
        raise ImportError(f"OpenCV {getattr(cv2, '__version__', '?')} has no CascadeClassifier: {OPENCV_INSTALL}")
    return cv2


class CascadeDetector:
    """An OpenCV cascade classifier (e.g. nagadomi's lbpcascade_animeface.xml for anime, or the
    bundled haarcascade_frontalface_default.xml for photos).

    Cascades give no score: the confidence is the number of neighbouring detections that support
    the box (detectMultiScale3 level weights), comparable only within one cascade."""

    def __init__(self, cascade_path: str | None = None, *, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: int = 24):
        cv2 = _import_cv2()
        if cascade_path is None:  # the frontal face cascade bundled with opencv-python
            cascade_path = os.path.join(getattr(getattr(cv2, "data", None), "haarcascades", ""),
                                        "haarcascade_frontalface_default.xml")
            if not os.path.isfile(cascade_path):
                raise ImportError(f"this OpenCV ({cv2.__version__}) bundles no haarcascade_frontalface_default.xml: "
                                  f"{OPENCV_INSTALL}, or pass --cascade=PATH")
        if not os.path.isfile(cascade_path):
            raise FileNotFoundError(f"cascade file {cascade_path!r} not found: pass --cascade=PATH to an "
                                    "OpenCV cascade XML (e.g. lbpcascade_animeface.xml)")
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(cascade_path)
        if self._cascade.empty():
            raise ValueError(f"{cascade_path!r} is not a valid OpenCV cascade XML")
        self._params = dict(scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size))

    def detect(self, image, key):
        cv2 = self._cv2
        gray = cv2.equalizeHist(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY))
        boxes, _, weights = self._cascade.detectMultiScale3(gray, outputRejectLevels=True, **self._params)
        return [Detection(float(x), float(y), float(w), float(h), float(weight))
                for (x, y, w, h), weight in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights))]


def make_detector(name: str, *, cascade: str | None = None, boxes: str | None = None) -> FaceDetector:
    """Builds a detector by command-line name: animeface, opencv (needs cascade for anime), boxes."""
    if name == "animeface":
        return AnimeFaceDetector()
    if name == "opencv":
        return CascadeDetector(cascade)
    if name == "boxes":
        if not boxes:
            raise ValueError("--detector=boxes needs --boxes=FILE (JSON {key: [[x, y, w, h, confidence], ...]})")
        return KnownBoxDetector.from_file(boxes)
    raise ValueError(f"unknown detector {name!r}: choose one of animeface, opencv, boxes")


@dataclasses.dataclass(frozen=True)
class CropSettings:
    """Face-crop options (see the module doc): rejection thresholds and the crop's shape."""
    min_confidence: float = 0.0
    min_face_size: float = 0.0
    margin: float = 0.0
    below: float = 1.0
    max_faces: int = 1
    check_crop_min_confidence: float = 0.0  # > 0: the crop check, with this threshold


def face_square_rows(shape: tuple[int, int], below: float) -> int:
    """How many top rows of a crop of shape (H, W) show the face square (the rest is `below`)."""
    return max(1, round(shape[0] / (1 + below)))


def crop_faces(image: Image.Image, key: str, detector: FaceDetector, shape: tuple[int, int],
               settings: CropSettings = CropSettings(), checker: FaceDetector | None = None):
    """Detects and crops the faces of one image.

    Returns (examples [(example key, uint8 [H, W, 3])], drop reason or None, counters): the first
    face keeps the image's key, further ones get "<key>_<n>"; counters count rejected faces as
    "face_rejected:<reason>". With settings.check_crop_min_confidence > 0, checker (default: the
    detector) must find a face that sure in each crop's face square, else the face is rejected as
    "no_character_in_crop" and the next one is tried."""
    detections = detector.detect(image, key)
    checking = settings.check_crop_min_confidence > 0
    boxes, rejected = select_face_crops(
        detections, image.size, shape, min_confidence=settings.min_confidence,
        min_face_size=settings.min_face_size, margin=settings.margin, below=settings.below,
        max_faces=len(detections) if checking else settings.max_faces)
    counts = {f"face_rejected:{reason}": count for reason, count in rejected.items()}
    if not detections:
        return [], "no_face_detected", counts
    examples = []
    for box in boxes:
        if len(examples) == settings.max_faces:
            break
        pixels = crop_resize(image, box, shape)
        if checking and not _crop_shows_a_face(pixels, key, checker or detector, settings):
            counts[f"face_rejected:{REJECT_NO_CHARACTER}"] = counts.get(f"face_rejected:{REJECT_NO_CHARACTER}", 0) + 1
            continue
        examples.append((key if not examples else f"{key}_{len(examples)}", pixels))
    if not examples:
        return [], "no_usable_face", counts
    return examples, None, counts


def _crop_shows_a_face(pixels: np.ndarray, key: str, checker: FaceDetector, settings: CropSettings) -> bool:
    square = Image.fromarray(pixels[:face_square_rows(pixels.shape[:2], settings.below)])
    return any(face.confidence >= settings.check_crop_min_confidence for face in checker.detect(square, key))
