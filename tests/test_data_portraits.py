"""Synthetic portraits: determinism, and labels/boxes that agree with the drawn pixels."""
import numpy as np
import pytest

from stylegan_jax.data import synthetic_portraits as sp

NUM = 64
FACE, LEFT_EYE, RIGHT_EYE, MOUTH = range(4)
LUMA = np.array([0.299, 0.587, 0.114])


def _pixels(image, box, keep=1.0):
    """Pixels of a normalised [ymin, xmin, ymax, xmax] box, optionally only its central `keep` part."""
    height, width = image.shape[:2]
    ymin, xmin, ymax, xmax = box
    pad_y, pad_x = (ymax - ymin) * (1 - keep) / 2, (xmax - xmin) * (1 - keep) / 2
    rows = slice(int(round((ymin + pad_y) * height)), int(round((ymax - pad_y) * height)))
    cols = slice(int(round((xmin + pad_x) * width)), int(round((xmax - pad_x) * width)))
    return image[rows, cols].reshape(-1, 3) / 255.0


def _nearest(color, palette):
    names, colors = list(palette), np.array(list(palette.values()))
    return names[int(np.argmin(((colors - color) ** 2).sum(axis=1)))]


@pytest.fixture(scope="module", params=[(64, 32), (128, 64)], ids=["64x32", "128x64"])
def drawn(request):
    return request.param, sp.generate(7, range(NUM), request.param)


def test_same_seed_same_images_other_seed_different():
    first = sp.generate(1, range(8), (64, 32))
    np.testing.assert_array_equal(first["image"], sp.generate(1, range(8), (64, 32))["image"])
    np.testing.assert_array_equal(first["label"], sp.generate(1, range(8), (64, 32))["label"])
    other = sp.generate(2, range(8), (64, 32))
    assert all(np.any(a != b) for a, b in zip(first["image"], other["image"]))
    # Each index has its own random stream: drawing it alone or in any batch gives the same image.
    np.testing.assert_array_equal(sp.generate(1, [5], (64, 32))["image"][0], first["image"][5])


def test_labels_are_valid_one_hot_blocks_and_all_classes_occur():
    out = sp.generate(3, range(300), (64, 32))
    spec = sp.LABEL_SPEC
    for name, classes in spec.attributes:
        columns = [spec.column(name, c) for c in classes]
        np.testing.assert_array_equal(out["label"][:, columns].sum(axis=1), 1.0)
        seen = {attributes[name] for attributes in out["attributes"]}
        assert seen == set(classes), name


def test_boxes_are_ordered_and_nested(drawn):
    _, out = drawn
    boxes = out["boxes"]
    assert np.all((boxes >= 0) & (boxes <= 1)) and np.all(boxes[..., 2:] > boxes[..., :2])
    face = boxes[:, FACE]
    for part in (LEFT_EYE, RIGHT_EYE, MOUTH):  # every part lies inside the face box
        assert np.all(boxes[:, part, :2] >= face[:, :2]) and np.all(boxes[:, part, 2:] <= face[:, 2:])
    assert np.all(boxes[:, LEFT_EYE, 3] <= boxes[:, RIGHT_EYE, 1] + 1e-6)  # left eye left of right
    assert np.all(boxes[:, MOUTH, 0] >= boxes[:, LEFT_EYE, 2])  # mouth below the eyes


def test_mouth_box_is_dark_exactly_when_open(drawn):
    _, out = drawn
    for image, boxes, attributes in zip(out["image"], out["boxes"], out["attributes"]):
        dark = int((_pixels(image, boxes[MOUTH]) @ LUMA < 0.3).sum())
        if attributes["mouth_open"] == "1":
            assert dark >= 2, attributes
        else:
            assert dark == 0, attributes


def test_iris_color_matches_eye_label(drawn):
    _, out = drawn
    palette = {k: np.array(v) / max(v) for k, v in sp.EYE_COLORS.items()}  # compare hues
    for image, boxes, attributes in zip(out["image"], out["boxes"], out["attributes"]):
        pixels = np.concatenate([_pixels(image, boxes[eye], keep=0.5) for eye in (LEFT_EYE, RIGHT_EYE)])
        saturation = pixels.max(axis=1) - pixels.min(axis=1)
        color = pixels[saturation >= np.median(saturation)].mean(axis=0)
        assert _nearest(color / color.max(), palette) == attributes["eye_color"]


def test_hair_color_matches_hair_label(drawn):
    (height, width), out = drawn
    for image, boxes, attributes in zip(out["image"], out["boxes"], out["attributes"]):
        # The side locks frame the face: sample at eye height on both face-box edges.
        row = int((boxes[LEFT_EYE, 0] + boxes[LEFT_EYE, 2]) / 2 * height)
        samples = [image[row - 1:row + 2, max(int(x * width) - 1, 0):int(x * width) + 2].reshape(-1, 3)
                   for x in (boxes[FACE, 1], boxes[FACE, 3])]
        color = np.median(np.concatenate(samples), axis=0) / 255.0
        assert _nearest(color, sp.HAIR_COLORS) == attributes["hair_color"]


@pytest.mark.parametrize("shape", [(64, 32), (128, 64)])
def test_hairband_twin_differs_only_at_top_of_head(shape):
    height, width = shape
    plain_indices = [i for i in range(20) if sp.sample_params(5, i)["hairband"] == 0][:6]
    for index in plain_indices:
        without, with_band = sp.twin(5, index, shape, hairband=1)
        assert without["attributes"][0]["hairband"] == "0"
        assert with_band["attributes"][0] == dict(without["attributes"][0], hairband="1")
        np.testing.assert_array_equal(without["boxes"], with_band["boxes"])
        changed = np.any(without["image"][0] != with_band["image"][0], axis=-1)
        rows, cols = np.nonzero(changed)
        boxes = without["boxes"][0]
        eyes_top = min(boxes[LEFT_EYE, 0], boxes[RIGHT_EYE, 0]) * height
        assert changed.sum() >= 0.02 * height * width  # the band is clearly visible
        assert rows.max() < eyes_top  # nothing changes at or below the eyes
        margin = 0.1 * width  # and only across the head, not in the background beside it
        assert cols.min() >= boxes[FACE, 1] * width - margin
        assert cols.max() < boxes[FACE, 3] * width + margin


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"H = 2 W with W in \[32, 256\].*got 64x64"):
        sp.generate(0, [0], (64, 64))
    with pytest.raises(ValueError, match=r"got 32x16"):
        sp.generate(0, [0], (32, 16))
    with pytest.raises(ValueError, match=r"unknown portrait parameters \['hat'\]"):
        sp.sample_params(0, 0, hat=1)
