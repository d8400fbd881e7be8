"""prepare_faces (landmark crops: geometry, room below, rotation) and prepare_folder (centre crops,
labels from sub-folders) on images the tests make."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from experiments import prepare_faces
from experiments.prepare_faces import prepare_faces_from_landmarks
from experiments.prepare_folder import prepare_folder
from stylegan_jax.data.prepared import read_prepared_info
from stylegan_jax.prep import landmarks
from helpers import read_examples

# eyes level at y=50, 20 apart; mouth 20 below: x = (40, 0), y = (0, 40), centre (50, 52)
POINTS = np.array([[40, 50], [60, 50], [42, 70], [58, 70]], float)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_command(module, *flags):
    return subprocess.run([sys.executable, "-m", module, *flags], cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                          capture_output=True, text=True, timeout=120, check=False)


def smooth_image(width, height):
    """A smooth pattern (bicubic sampling reproduces it closely wherever it samples)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 2, y, (x + y) // 2], -1).clip(0, 255).astype(np.uint8)


def test_face_quad_matches_hand_computed_corners():
    crop, square = landmarks.face_quad(POINTS, (512, 256))
    np.testing.assert_allclose(square, [[10, 12], [10, 92], [90, 92], [90, 12]])
    np.testing.assert_allclose(crop, [[10, 12], [10, 172], [90, 172], [90, 12]])  # face plus the same below
    crop, _ = landmarks.face_quad(POINTS, (256, 256))
    np.testing.assert_allclose(crop, [[-30, 12], [-30, 172], [130, 172], [130, 12]])


def test_68_points_reduce_to_eyes_and_mouth_corners():
    points = np.zeros((68, 2))
    points[36:42] = [[38, 49], [42, 51]] * 3  # left eye ring averages to (40, 50)
    points[42:48] = [[60, 48], [60, 52]] * 3
    points[48], points[54] = [42, 70], [58, 70]
    np.testing.assert_allclose(landmarks.five_points(points.tolist()), POINTS)
    named = dict(zip(("eye_left", "eye_right", "mouth_left", "mouth_right"), POINTS.tolist()))
    np.testing.assert_allclose(landmarks.five_points(named), POINTS)
    with pytest.raises(ValueError, match="68"):
        landmarks.five_points([[1, 2]] * 5)


def test_prepare_faces_keeps_photos_with_room_below(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(smooth_image(100, 180)).save(photos / "fits.png")
    Image.fromarray(smooth_image(100, 120)).save(photos / "short.png")  # face square fits, 172 > 120
    Image.fromarray(smooth_image(100, 180)).save(photos / "high.png")   # face square starts above the top
    (photos / "corrupt.png").write_bytes(b"garbage")
    entries = {"fits.png": POINTS.tolist(), "short.png": POINTS.tolist(), "high.png": (POINTS - [0, 20]).tolist(),
               "corrupt.png": POINTS.tolist(), "missing.png": POINTS.tolist()}
    # FFHQ's own file format for one of them
    ffhq = {str(i): {"in_the_wild": {"file_path": name, "face_landmarks": _as_68(points)}}
            for i, (name, points) in enumerate(entries.items())}
    (tmp_path / "ffhq.json").write_text(json.dumps(ffhq))
    report = prepare_faces_from_landmarks(str(photos), str(tmp_path / "ffhq.json"), str(tmp_path / "out"),
                                          shape=(160, 80))
    assert report["images_with_room_below"] == 1 and report["kept_examples"] == 1
    assert report["dropped"] == {"crop_outside_image": 1, "image_missing": 1, "no_room_below": 1,
                                 "unreadable_image": 1}
    [(key, (image, _))] = read_examples(tmp_path / "out").items()
    assert key == "fits.png"
    # the crop is 160x80 = the target: rows 12..172, columns 10..90 of the photo
    expected = smooth_image(100, 180)[12:172, 10:90].astype(int)
    assert np.abs(image.astype(int) - expected).max() <= 2


def _as_68(points):
    full = np.zeros((68, 2))
    full[36:42], full[42:48], full[48], full[54] = points[0], points[1], points[2], points[3]
    return full.tolist()


def test_landmark_crop_follows_a_rotated_face(tmp_path):
    pixels = smooth_image(100, 180)
    upright = landmarks.crop_quad(Image.fromarray(pixels), landmarks.face_quad(POINTS, (32, 16))[0], (32, 16))
    # the photo turned 90 degrees counter-clockwise: a point (x, y) moves to (y, width - x)
    turned = np.ascontiguousarray(np.rot90(pixels))
    turned_points = np.stack([POINTS[:, 1], 100 - POINTS[:, 0]], -1)
    crop, _ = landmarks.face_quad(turned_points, (32, 16))
    rotated = landmarks.crop_quad(Image.fromarray(turned), crop, (32, 16))
    assert np.abs(rotated.astype(int) - upright.astype(int)).mean() < 2


def test_faces_command_needs_a_landmarks_file_or_detector(tmp_path):
    with pytest.raises(FileNotFoundError, match="landmarks"):
        prepare_faces.prepare(str(tmp_path), str(tmp_path / "o"), landmarks=str(tmp_path / "none.json"))
    result = run_command("experiments.prepare_faces", f"--images={tmp_path}", f"--out={tmp_path / 'o'}",
                         f"--landmarks={tmp_path / 'none.json'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: landmarks file '{tmp_path / 'none.json'}' not found: give FFHQ's ffhq-dataset-v2.json or "
        "{image path: 68 [x, y] points}")
    result = run_command("experiments.prepare_faces", f"--images={tmp_path}", f"--out={tmp_path / 'o'}",
                         "--detector=dlib")
    assert result.returncode == 1
    assert "flag --detector=dlib: value should be one of <opencv|animeface|boxes>" in result.stderr


@pytest.fixture()
def class_folders(tmp_path):
    root = tmp_path / "images"
    for folder in ("cats", "dogs"):
        (root / folder).mkdir(parents=True)
    Image.fromarray(smooth_image(60, 40)).save(root / "cats" / "wide.png")   # crop columns 20..40
    Image.fromarray(smooth_image(20, 80)).save(root / "cats" / "tall.png")   # crop rows 20..60
    Image.fromarray(smooth_image(30, 60)).save(root / "dogs" / "exact.png")  # already 2:1
    Image.fromarray(smooth_image(40, 80)).save(root / "loose.png")
    (root / "dogs" / "broken.png").write_bytes(b"not a png")
    return root


def test_folder_centre_crops_and_labels_from_subfolders(class_folders, tmp_path):
    report = prepare_folder(str(class_folders), str(tmp_path / "out"), shape=(40, 20), label_attribute="animal")
    assert report["dropped"] == {"not_in_a_class_folder": 1, "unreadable_image": 1}
    assert report["label"] == {"animal": {"cats": 2, "dogs": 1}}
    spec = read_prepared_info(tmp_path / "out")["label_spec"]
    examples = read_examples(tmp_path / "out")
    assert sorted(examples) == ["cats/tall.png", "cats/wide.png", "dogs/exact.png"]
    assert np.array_equal(examples["cats/wide.png"][0], smooth_image(60, 40)[:, 20:40])
    assert np.array_equal(examples["cats/tall.png"][0], smooth_image(20, 80)[20:60])
    assert spec.decode(examples["dogs/exact.png"][1]) == {"animal": "dogs"}
    assert spec.decode(examples["cats/wide.png"][1]) == {"animal": "cats"}


def test_folder_without_labels_keeps_every_readable_image(class_folders, tmp_path):
    report = prepare_folder(str(class_folders), str(tmp_path / "out"), shape=(40, 20), min_size=(50, 0))
    assert report["dropped"] == {"too_small": 1, "unreadable_image": 1}  # wide.png is only 40 high
    assert read_prepared_info(tmp_path / "out")["label_spec"] is None
    with pytest.raises(ValueError, match=">= 2 class folders"):
        prepare_folder(str(class_folders / "cats"), str(tmp_path / "o2"), label_attribute="animal")


def test_folder_command_line(class_folders, tmp_path):
    result = run_command("experiments.prepare_folder", f"--images={class_folders}", f"--out={tmp_path / 'cli'}",
                         "--shape=40x20", "--min_size=50x0", "--labels_from_subfolders=animal", "--shard_size=2")
    assert result.returncode == 0, result.stderr[-2000:]
    printed, wrote = result.stdout.rstrip().rsplit("\n", 1)
    report = prepare_folder(str(class_folders), str(tmp_path / "api"), shape=(40, 20), min_size=(50, 0),
                            label_attribute="animal", shard_size=2)
    assert json.loads(printed) == json.loads(json.dumps(report))
    assert wrote == f"wrote 2 examples in 1 shards to {tmp_path / 'cli'}"
    for flag in ("--shape=40by20", "--min_size=50"):
        result = run_command("experiments.prepare_folder", f"--images={class_folders}", f"--out={tmp_path / 'o'}", flag)
        assert result.returncode == 1 and f"flag {flag}: bad shape" in result.stderr, result.stderr
    result = run_command("experiments.prepare_folder", f"--images={class_folders}", f"--out={tmp_path / 'o'}", "stray")
    assert result.returncode == 1 and "unexpected arguments: stray" in result.stderr
    assert not (tmp_path / "o").exists()


class FakeCv2:
    """Stands in for OpenCV (not installed in CI): a cascade that finds one 40-pixel face at
    (30, 10) with 7 supporting neighbours, on a 100-pixel-wide image."""
    COLOR_RGB2GRAY = 7

    class data:  # noqa: N801 (cv2.data.haarcascades)
        haarcascades = None

    class CascadeClassifier:
        def __init__(self, path):
            self.path = path

        def empty(self):
            return False

        def detectMultiScale3(self, gray, outputRejectLevels, scaleFactor, minNeighbors, minSize):
            assert gray.ndim == 2 and outputRejectLevels
            return np.array([[30, 10, 40, 40]]), np.array([[25]]), np.array([[7.0]])

    @staticmethod
    def cvtColor(rgb, code):
        return rgb.mean(-1).astype(np.uint8)

    @staticmethod
    def equalizeHist(gray):
        return gray


def test_opencv_cascade_path_with_a_stand_in(tmp_path, monkeypatch):
    import sys

    from experiments.prepare_faces import prepare_faces_with_detector
    from stylegan_jax.prep import crops

    FakeCv2.data.haarcascades = str(tmp_path)
    (tmp_path / "haarcascade_frontalface_default.xml").write_text("<opencv_storage/>")
    monkeypatch.setitem(sys.modules, "cv2", FakeCv2)
    detector = crops.make_detector("opencv")  # the bundled frontal-face cascade
    assert detector.detect(Image.fromarray(smooth_image(100, 100)), "x") == [crops.Detection(30, 10, 40, 40, 7.0)]
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(smooth_image(100, 100)).save(photos / "room.png")   # crop rows 10..90: fits
    Image.fromarray(smooth_image(100, 80)).save(photos / "short.png")   # face fits, crop does not
    report = prepare_faces_with_detector(str(photos), str(tmp_path / "out"), detector, shape=(80, 40))
    assert report["images_with_room_below"] == 1
    assert report["dropped"] == {"no_usable_face": 1} and report["face_rejected"] == {"no_room_below": 1}
    [(key, (image, _))] = read_examples(tmp_path / "out").items()
    assert key == "room.png" and np.array_equal(image, smooth_image(100, 100)[10:90, 30:70])
    with pytest.raises(FileNotFoundError, match="--cascade"):
        crops.make_detector("opencv", cascade=str(tmp_path / "absent.xml"))
