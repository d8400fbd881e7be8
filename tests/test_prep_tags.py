"""Tag vocabularies: class priority, fallback classes, unspecified attributes, label vectors."""
import json

import numpy as np
import pytest

from stylegan_jax.prep.tags import AMBIGUOUS, UNSPECIFIED, TagVocabulary, group_counts

VOCABULARY = {"attributes": [
    {"name": "hair", "classes": {"blonde": ["blonde_hair"], "dark": ["black_hair", "brown_hair"]}},  # no fallback
    {"name": "mouth_open", "classes": {"0": [], "1": ["open_mouth"]}},
]}


def test_classes_follow_priority_fallback_and_unspecified():
    vocabulary = TagVocabulary(VOCABULARY)
    assert vocabulary.spec.attributes == (("hair", ("blonde", "dark")), ("mouth_open", ("0", "1")))
    assert vocabulary.classify({"brown_hair", "smile"}) == {"hair": "dark", "mouth_open": "0"}
    assert vocabulary.classify({"black_hair", "blonde_hair", "open_mouth"}) == {"hair": "blonde" + AMBIGUOUS,
                                                                               "mouth_open": "1"}
    assert vocabulary.classify(set()) == {"hair": UNSPECIFIED, "mouth_open": "0"}
    # one-hot blocks [blonde, dark | 0, 1]; an unspecified attribute is a zero block
    np.testing.assert_array_equal(vocabulary.encode({"black_hair", "blonde_hair"}), [1, 0, 1, 0])
    np.testing.assert_array_equal(vocabulary.encode({"open_mouth"}), [0, 0, 0, 1])


def test_counts_group_for_the_report():
    vocabulary = TagVocabulary(VOCABULARY)
    totals = {}
    for tags in ({"brown_hair"}, {"brown_hair", "open_mouth"}, {"blonde_hair", "black_hair"}):
        for name, count in vocabulary.counts(tags).items():
            totals[name] = totals.get(name, 0) + count
    assert group_counts(totals) == {
        "label": {"hair": {"blonde" + AMBIGUOUS: 1, "dark": 2}, "mouth_open": {"0": 2, "1": 1}},
        "tag": {"black_hair": 1, "blonde_hair": 1, "brown_hair": 2, "open_mouth": 1}}


def test_vocabulary_files_and_their_errors(tmp_path):
    (tmp_path / "v.json").write_text(json.dumps(VOCABULARY))
    assert TagVocabulary.load(str(tmp_path / "v.json")).tags == ["black_hair", "blonde_hair", "brown_hair",
                                                                 "open_mouth"]
    default = TagVocabulary.load("default")
    assert default.spec.names == ("gender", "hair_color", "eye_color", "mouth_open", "hairband")
    assert default.classify({"1boy", "silver_hair"})["hair_color"] == "white"
    with pytest.raises(FileNotFoundError, match="--vocabulary=default"):
        TagVocabulary.load(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="not a tag vocabulary"):
        TagVocabulary({"attrs": []})
