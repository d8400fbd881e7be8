"""Face-crop geometry against hand-computed boxes, rejection reasons, and safe image loading."""
import numpy as np
import pytest
from PIL import Image

from stylegan_jax.prep import crops
from stylegan_jax.prep.images import MissingImage, UnreadableImage, centre_crop_box, crop_resize, load_rgb

D = crops.Detection


@pytest.mark.parametrize("face, shape, margin, below, expected", [
    # square face 40: face square (100..140, 50..90) plus the same below, width = height / 2
    (D(100, 50, 40, 40), (512, 256), 0.0, 1.0, (100, 50, 140, 130)),
    # taller than wide: side 60 around the centre (120, 80) -> top 50, width 60 centred at x=120
    (D(100, 50, 40, 60), (512, 256), 0.0, 1.0, (90, 50, 150, 170)),
    # margin 0.25 grows 40 -> 60 around the centre (120, 70): top 40, height 120, width 60
    (D(100, 50, 40, 40), (512, 256), 0.25, 1.0, (90, 40, 150, 160)),
    # square target: the same 80 rows, now 80 wide
    (D(100, 50, 40, 40), (256, 256), 0.0, 1.0, (80, 50, 160, 130)),
    # half a face below: height 60, width 30
    (D(100, 50, 40, 40), (512, 256), 0.0, 0.5, (105, 50, 135, 110)),
])
def test_face_crop_box_matches_hand_computed(face, shape, margin, below, expected):
    box = crops.face_crop_box(face, shape, margin=margin, below=below)
    np.testing.assert_allclose(box, expected)
    left, top, right, bottom = box
    assert (bottom - top) * shape[1] == pytest.approx((right - left) * shape[0])  # the target aspect


def test_rejections_are_counted_per_reason_in_order():
    image_size = (200, 140)  # PIL (width, height)
    detections = [
        D(100, 50, 40, 40, 0.9),   # crop (100, 50, 140, 130): fits
        D(10, 100, 30, 30, 0.95),  # face square fits, crop bottom 160 > 140: no room below
        D(50, 10, 8, 8, 0.99),     # face smaller than 10
        D(120, 10, 20, 20, 0.1),   # not confident enough (also small: confidence is checked first)
        D(160, 60, 40, 40, 0.5),   # crop (160, 60, 200, 140) touches the border: fits
        D(161, 60, 40, 40, 0.4),   # one pixel further: even the face square leaves the image
    ]
    boxes, rejected = crops.select_face_crops(detections, image_size, (512, 256), min_confidence=0.3,
                                              min_face_size=10, max_faces=5)
    assert rejected == {crops.REJECT_OUTSIDE: 1, crops.REJECT_NO_ROOM_BELOW: 1, crops.REJECT_TOO_SMALL: 1,
                        crops.REJECT_LOW_CONFIDENCE: 1}
    np.testing.assert_allclose(boxes, [(100, 50, 140, 130), (160, 60, 200, 140)])  # most confident first
    boxes, _ = crops.select_face_crops(detections, image_size, (512, 256), min_confidence=0.3,
                                       min_face_size=10, max_faces=1)
    np.testing.assert_allclose(boxes, [(100, 50, 140, 130)])


def _coordinate_image(width, height):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x % 256, y % 256, (x * 3 + y) % 256], -1).astype(np.uint8)


def test_crop_faces_cuts_the_face_and_the_part_below():
    pixels = _coordinate_image(200, 140)
    detector = crops.KnownBoxDetector({"7": [[100, 50, 40, 40, 0.9], [10, 100, 30, 30, 0.8]]})
    examples, dropped, counts = crops.crop_faces(Image.fromarray(pixels), "7", detector, (80, 40),
                                                 crops.CropSettings(max_faces=2))
    assert dropped is None and counts == {"face_rejected:no_room_below": 1}
    [(key, crop)] = examples
    # target size == crop size: Lanczos at scale 1 is the identity, so the exact pixels come out
    assert key == "7" and np.array_equal(crop, pixels[50:130, 100:140])
    assert crops.crop_faces(Image.fromarray(pixels), "8", detector, (80, 40))[1] == "no_face_detected"
    only_bad = crops.KnownBoxDetector({"9": [[10, 100, 30, 30, 0.8]]})
    assert crops.crop_faces(Image.fromarray(pixels), "9", only_bad, (80, 40))[1] == "no_usable_face"


def test_several_faces_get_numbered_keys_and_downscaled_crops():
    pixels = _coordinate_image(200, 140)
    detector = crops.KnownBoxDetector({"k": [[100, 50, 40, 40, 0.5], [160, 60, 40, 40, 0.9]]})
    examples, _, _ = crops.crop_faces(Image.fromarray(pixels), "k", detector, (20, 10),
                                      crops.CropSettings(max_faces=3))
    assert [key for key, _ in examples] == ["k", "k_1"]
    assert all(crop.shape == (20, 10, 3) and crop.dtype == np.uint8 for _, crop in examples)
    # the green channel is the row index: a 4x downscale of rows 60..140 averages to ~ 61.5 + 4 i
    np.testing.assert_allclose(examples[0][1][:, 5, 1], 61.5 + 4 * np.arange(20), atol=1.5)


def test_centre_crop_box_and_crop_resize():
    assert centre_crop_box((300, 100), (2, 1)) == (125, 0, 175, 100)
    assert centre_crop_box((100, 300), (2, 1)) == (0, 50, 100, 250)
    image = Image.fromarray(_coordinate_image(300, 100))
    assert np.array_equal(crop_resize(image, (125, 0, 175, 100), (100, 50)), np.asarray(image)[:, 125:175])


def test_missing_detector_dependencies_name_the_install(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_optional(name, *args, **kwargs):
        if name in ("cv2", "animeface"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optional)
    with pytest.raises(ImportError, match="pip install opencv-python-headless"):
        crops.make_detector("opencv", cascade="x.xml")
    with pytest.raises(ImportError, match="pip install animeface"):
        crops.make_detector("animeface")
    with pytest.raises(ValueError, match="choose one of"):
        crops.make_detector("yolo")


def test_load_rgb_reads_good_images_and_refuses_bad_ones(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    loaded = np.asarray(load_rgb(tmp_path / "a.png"))
    assert loaded.shape == (4, 6, 3)
    assert (loaded[:2] == [200, 0, 0]).all() and (loaded[2:] == 255).all()  # transparent -> white

    Image.fromarray(_coordinate_image(64, 64)).save(tmp_path / "good.jpg", quality=90)
    (tmp_path / "truncated.jpg").write_bytes((tmp_path / "good.jpg").read_bytes()[:300])
    (tmp_path / "garbage.png").write_bytes(b"not an image")
    for name in ("truncated.jpg", "garbage.png"):
        with pytest.raises(UnreadableImage):
            load_rgb(tmp_path / name)
    with pytest.raises(MissingImage):
        load_rgb(tmp_path / "absent.png")
    with pytest.raises(UnreadableImage, match="max_pixels"):
        load_rgb(tmp_path / "good.jpg", max_pixels=100)
