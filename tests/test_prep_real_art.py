"""The real face detectors on real anime illustrations drawn by people (Ren'Py's example games,
installed from Debian by .ci/run): the faces found and the crops made, against face boxes measured
by hand on the images.

The hand boxes run from the brows to the chin and from cheek to cheek. AnimeFace's boxes are
square and about 1.3-1.5 times larger, so a found face overlaps its hand box by IoU 0.43-0.8
here, a box on anything else by 0.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from experiments import prepare_faces
from stylegan_jax.prep import animeface, crops
from stylegan_jax.prep.images import crop_resize, load_rgb
from helpers import real_art, read_examples

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIN_IOU = 0.4
# (x, y, width, height) of each character's face, measured by hand on a 10 px grid.
SPRITES = {
    "the_question/game/images/sylvie green normal.png": [(140, 70, 95, 100)],
    "the_question/game/images/sylvie blue normal.png": [(103, 78, 110, 92)],
    "demo/game/images/eileen happy.png": [(92, 140, 144, 118)],
    "demo/game/images/lucy happy.png": [(157, 150, 111, 97)],
}
CONCERT = "demo/game/images/concert1.png"  # 2400x1530, three girls on stage, a chibi drawn on the drum
CONCERT_FACES = [(1610, 375, 235, 235), (347, 520, 125, 125), (860, 610, 112, 128), (1025, 1305, 120, 75)]
SURE = 0.9  # AnimeFace's likelihood on every face above; its two false detections on CONCERT are below


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    return inter / (aw * ah + bw * bh - inter)


def boxes(detections, min_confidence=0.0):
    return [(d.x, d.y, d.width, d.height) for d in detections if d.confidence >= min_confidence]


def assert_match(found, expected):
    """Each hand box overlaps exactly one found box (IoU >= MIN_IOU), and no found box is left over."""
    assert len(found) == len(expected), (found, expected)
    for hand in expected:
        matches = [box for box in found if iou(box, hand) >= MIN_IOU]
        assert len(matches) == 1, (hand, found, [round(iou(box, hand), 2) for box in found])


def needs_animeface():
    """Skips without the animeface package, except in CI (STYLEGAN_JAX_REQUIRE_ART=1), where it is required."""
    if os.environ.get("STYLEGAN_JAX_REQUIRE_ART") != "1":
        pytest.importorskip("animeface", reason="animeface is not installed (pip install -r requirements.txt)")


@pytest.fixture(scope="module")
def detector():
    needs_animeface()
    return crops.AnimeFaceDetector()  # runs the self-check


@pytest.mark.parametrize("name", sorted(SPRITES))
def test_animeface_finds_each_sprites_face(detector, name):
    found = detector.detect(load_rgb(real_art(name)), name)
    assert_match(boxes(found), SPRITES[name])
    assert all(d.confidence >= SURE for d in found)


@pytest.mark.slow
def test_animeface_finds_the_faces_of_a_scene(detector):
    found = detector.detect(load_rgb(real_art(CONCERT)), CONCERT)
    assert_match(boxes(found, SURE), CONCERT_FACES)
    unsure = boxes([d for d in found if d.confidence < SURE])
    assert len(unsure) == 2 and all(iou(box, hand) == 0 for box in unsure for hand in CONCERT_FACES)


@pytest.mark.parametrize("name", sorted(SPRITES))
def test_default_margin_crops_hold_the_face_with_room_for_the_hair(detector, name):
    image = load_rgb(real_art(name))
    [face] = detector.detect(image, name)
    margin = crops.DEFAULT_MARGINS["animeface"]
    left, top, right, bottom = crops.face_crop_box(face, (512, 256), margin=margin)
    assert crops.box_inside((left, top, right, bottom), image.size)
    [(x, y, w, h)] = SPRITES[name]
    side = right - left  # 2:1: the face square is the top half
    assert left <= x and x + w <= right and top <= y and y + h <= top + side  # the face inside its square
    assert 1.5 <= side / h <= 2.7  # the face fills a third to two thirds of the square's height
    assert (y - top) > 0.2 * h  # forehead and fringe above the brows
    # The same crop through the tool's path: the face square's pixels are the image's.
    [(key, pixels)], dropped, _ = crops.crop_faces(image, name, detector, (512, 256), crops.CropSettings(margin=margin))
    assert dropped is None and pixels.shape == (512, 256, 3)


@pytest.mark.slow
def test_crop_check_drops_the_detections_that_are_no_face(detector):
    image = load_rgb(real_art(CONCERT))
    found = detector.detect(image, "c")  # detected once; crop_faces gets the same boxes
    known = crops.KnownBoxDetector({"c": [[d.x, d.y, d.width, d.height, d.confidence] for d in found]})
    settings = crops.CropSettings(margin=0.4, max_faces=6)
    kept, _, counts = crops.crop_faces(image, "c", known, (512, 256), settings)
    assert len(kept) == 5 and counts == {"face_rejected:no_room_below": 1}  # the chibi on the drum
    checked = crops.CropSettings(margin=0.4, max_faces=6, check_crop_min_confidence=0.8)
    kept, _, counts = crops.crop_faces(image, "c", known, (512, 256), checked, checker=detector)
    assert counts == {"face_rejected:no_room_below": 1, "face_rejected:no_character_in_crop": 2}
    # What stays are the three girls: the kept crops are those of the detections on their faces.
    girls = [d for d in found if max(iou((d.x, d.y, d.width, d.height), hand) for hand in CONCERT_FACES[:3]) >= MIN_IOU]
    image_pixels = [crop_resize(image, crops.face_crop_box(d, (512, 256), margin=0.4), (512, 256)) for d in girls]
    assert len(kept) == len(girls) == 3
    assert sorted(pixels.tobytes() for _, pixels in kept) == sorted(pixels.tobytes() for pixels in image_pixels)


def test_opencv_frontal_face_cascade_finds_one_drawn_face():
    """The photo cascade (OpenCV 4.x's bundled haarcascade_frontalface_default) on a drawn face."""
    pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    name = "the_question/game/images/sylvie green normal.png"
    found = crops.make_detector("opencv").detect(load_rgb(real_art(name)), name)
    assert_match(boxes(found), SPRITES[name])


@pytest.mark.slow
def test_prepare_faces_with_animeface_on_a_folder_of_art(tmp_path):
    folder = tmp_path / "art"
    folder.mkdir()
    for name in SPRITES:
        shutil.copy(real_art(name), folder / os.path.basename(name).replace(" ", "_"))
    Image.new("RGB", (300, 600), "white").save(folder / "blank.png")  # no face
    report = prepare_faces.prepare(str(folder), str(tmp_path / "out"), shape=(256, 128), detector="animeface")
    assert report["settings"]["crop"]["margin"] == crops.DEFAULT_MARGINS["animeface"]
    assert (report["items"], report["kept_examples"], report["images_with_face"]) == (5, 4, 4)
    assert report["images_with_room_below"] == 4 and report["dropped"] == {"no_face_detected": 1}
    assert report["kept_fraction"] == 0.8 and report["warnings"] == []
    examples = read_examples(tmp_path / "out")
    assert sorted(examples) == sorted(os.path.basename(n).replace(" ", "_") for n in SPRITES)


def test_self_check_fails_loudly_when_the_library_finds_nothing(monkeypatch):
    needs_animeface()
    library = animeface.NvxsLibrary()
    animeface.verify(library)  # the real library passes
    monkeypatch.setattr(library, "detect", lambda rgb: [])  # what the Pillow 12+ extension returns
    with pytest.raises(animeface.DetectorBroken, match="fails its self-check"):
        animeface.verify(library)


def test_a_broken_animeface_install_is_one_line_and_exit_2(tmp_path):
    fake = tmp_path / "site" / "animeface"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")  # the package without its nvxs library
    (tmp_path / "art").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "experiments.prepare_faces", f"--images={tmp_path / 'art'}",
         f"--out={tmp_path / 'out'}", "--detector=animeface"], cwd=REPO,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), REPO])),
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: the animeface package in ") and "pip install animeface==2.0.3" in lines[-1]
    assert "Traceback" not in result.stderr


def test_opencv_without_the_cascade_classifier_names_the_version(monkeypatch):
    class OpenCV5:  # what opencv-python-headless 5.x offers: no CascadeClassifier
        __version__ = "5.0.0"

    monkeypatch.setitem(sys.modules, "cv2", OpenCV5)
    with pytest.raises(ImportError, match=r"OpenCV 5\.0\.0 has no CascadeClassifier: pip install "
                                          r"opencv-python-headless==4\.14\.0\.94"):
        crops.make_detector("opencv")
