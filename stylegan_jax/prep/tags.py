"""Labels for conditional training from tags, through a vocabulary file, and tag counts.

Vocabulary file (JSON): attributes in order, each with its classes in order and the tags that
select a class:

  {"attributes": [
     {"name": "gender", "classes": {"girl": ["1girl"], "boy": ["1boy"], "other": []}},
     {"name": "mouth_open", "classes": {"0": [], "1": ["open_mouth"]}}]}

A post gets, per attribute, the first class (in file order) one of whose tags it has; a class with
no tags is the fallback when none matches; with no fallback the attribute stays unspecified (a zero
block, see LabelSpec). A post matching several classes (blonde_hair and black_hair) takes the first
and is counted as ambiguous, so the vocabulary's order is its priority.
"""
from __future__ import annotations

import numpy as np

from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.utils import read_json

_HAIR = ["blonde", "brown", "black", "blue", "pink", "purple", "green", "red", "orange", "aqua"]
_EYES = ["blue", "red", "brown", "green", "purple", "yellow", "pink", "aqua", "orange"]

# The attributes to edit (hair colour, eye colour, open mouth, hairband) plus gender, so
# the imbalance between 1girl and 1boy shows in the counts before training.
DEFAULT_VOCABULARY = {"attributes": [
    {"name": "gender", "classes": {"girl": ["1girl"], "boy": ["1boy"], "other": []}},
    {"name": "hair_color", "classes": dict([(c, [f"{c}_hair"]) for c in _HAIR]
                                           + [("white", ["white_hair", "silver_hair", "grey_hair"]), ("other", [])])},
    {"name": "eye_color", "classes": dict([(c, [f"{c}_eyes"]) for c in _EYES] + [("other", [])])},
    {"name": "mouth_open", "classes": {"0": [], "1": ["open_mouth"]}},
    {"name": "hairband", "classes": {"0": [], "1": ["hairband"]}},
]}

UNSPECIFIED = "(unspecified)"
AMBIGUOUS = "(ambiguous)"


class TagVocabulary:
    """Maps a set of tags to one class per attribute and to a LabelSpec label vector."""

    def __init__(self, vocabulary: dict):
        try:
            attributes = [(a["name"], {str(c): list(tags) for c, tags in a["classes"].items()})
                          for a in vocabulary["attributes"]]
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a tag vocabulary ({error!r}): expected {{\"attributes\": [{{\"name\": ..., "
                             "\"classes\": {\"class\": [\"tag\", ...], ...}}, ...]}") from None
        self.attributes = attributes
        self.spec = LabelSpec([(name, list(classes)) for name, classes in attributes])
        self.tags = sorted({tag for _, classes in attributes for tags in classes.values() for tag in tags})

    @classmethod
    def load(cls, path: str) -> "TagVocabulary":
        """A vocabulary file, or "default" for DEFAULT_VOCABULARY."""
        if path == "default":
            return cls(DEFAULT_VOCABULARY)
        return cls(read_json(path, f"vocabulary {path!r} not found: give a JSON file (see stylegan_jax/prep/tags.py) "
                                   "or --vocabulary=default"))

    def classify(self, tags) -> dict:
        """{attribute: class name, UNSPECIFIED, or class name + AMBIGUOUS marker} for a tag set."""
        tags = frozenset(tags)
        result = {}
        for name, classes in self.attributes:
            matches = [c for c, class_tags in classes.items() if class_tags and tags.intersection(class_tags)]
            fallback = [c for c, class_tags in classes.items() if not class_tags]
            if matches:
                result[name] = matches[0] + (AMBIGUOUS if len(matches) > 1 else "")
            else:
                result[name] = fallback[0] if fallback else UNSPECIFIED
        return result

    def encode(self, tags) -> np.ndarray:
        """float32 [spec.dim] label vector of a tag set (zero block for an unspecified attribute)."""
        values = {}
        for name, value in self.classify(tags).items():
            if value != UNSPECIFIED:
                values[name] = value.removesuffix(AMBIGUOUS)
        return self.spec.encode(values, allow_missing=True)

    def counts(self, tags) -> dict:
        """Flat counters of one example for the report: "tag:<tag>" for each vocabulary tag it has,
        "label:<attribute>=<class>" for its classes (see group_counts)."""
        tags = frozenset(tags)
        counts = {f"tag:{tag}": 1 for tag in self.tags if tag in tags}
        counts.update({f"label:{name}={value}": 1 for name, value in self.classify(tags).items()})
        return counts


def group_counts(counts: dict) -> dict:
    """Splits flat "<group>:<name>" counters into {group: {name: count}} (names sorted), e.g.
    {"tag:1girl": 5} -> {"tag": {"1girl": 5}}; "label:a=b" counters nest by attribute."""
    grouped = {}
    for flat_name in sorted(counts):
        group, _, name = flat_name.partition(":")
        if group == "label":
            attribute, _, value = name.partition("=")
            grouped.setdefault("label", {}).setdefault(attribute, {})[value] = counts[flat_name]
        else:
            grouped.setdefault(group, {})[name] = counts[flat_name]
    return grouped
