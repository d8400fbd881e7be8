"""LabelSpec: one-hot blocks per attribute, text parsing, JSON round trip and clear errors."""
import json

import numpy as np
import pytest

from stylegan_jax.data.labels import LabelSpec

SPEC = LabelSpec({"hair_color": ["black", "blonde", "red"], "mouth_open": ["0", "1"],
                  "hairband": ["0", "1"]})


def test_dim_kind_and_encoding_layout():
    assert SPEC.dim == 3 + 2 + 2 and SPEC.kind == "multihot"
    assert LabelSpec({"class": ["a", "b", "c", "d"]}).kind == "onehot"
    vector = SPEC.encode({"hair_color": "red", "mouth_open": "1", "hairband": 0})
    # Blocks in attribute order: [black blonde red | 0 1 | 0 1].
    np.testing.assert_array_equal(vector, [0, 0, 1, 0, 1, 1, 0])
    assert SPEC.decode(vector) == {"hair_color": "red", "mouth_open": "1", "hairband": "0"}


def test_parse_partial_and_format_round_trip():
    vector = SPEC.parse(" hair_color=blonde , mouth_open=1 ")
    np.testing.assert_array_equal(vector, [0, 1, 0, 0, 1, 0, 0])  # hairband unspecified: zeros
    assert SPEC.format(vector) == "hair_color=blonde,mouth_open=1"
    np.testing.assert_array_equal(SPEC.parse(SPEC.format(vector)), vector)


def test_json_round_trip():
    text = SPEC.to_json()
    assert LabelSpec.from_json(text) == SPEC
    assert LabelSpec.from_json(json.loads(text)) == SPEC  # already-parsed objects too


@pytest.mark.parametrize("text, message", [
    ("hair=blonde", r"unknown attribute 'hair': choose one of hair_color, mouth_open, hairband"),
    ("hair_color=green", r"unknown class 'green' for attribute 'hair_color': choose one of black, blonde, red"),
    ("mouth_open=yes", r"unknown class 'yes' .*choose one of 0, 1"),
    ("hair_color", r"write attribute=class"),
    ("hair_color=red,hair_color=black", r"given twice"),
])
def test_parse_errors_name_the_choices(text, message):
    with pytest.raises(ValueError, match=message):
        SPEC.parse(text)


def test_other_errors():
    with pytest.raises(ValueError, match=r"label vector has size 3, this spec needs 7"):
        SPEC.decode([1, 0, 0])
    with pytest.raises(ValueError, match=r"missing attributes hairband"):
        SPEC.encode({"hair_color": "red", "mouth_open": "0"})
    with pytest.raises(ValueError, match=r"needs >= 2 distinct class names"):
        LabelSpec({"x": ["only"]})
    with pytest.raises(ValueError, match=r"not a LabelSpec JSON object"):
        LabelSpec.from_json('{"kind": "onehot"}')
