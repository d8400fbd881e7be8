"""Label vectors for conditional training: named categorical attributes, one-hot per attribute.

A LabelSpec lists attributes, each with its class names (a yes/no attribute has classes ("0", "1")).
A label vector is the concatenation of one one-hot block per attribute, so a single attribute gives
a one-of-K vector (kind "onehot") and several give a multi-hot vector (kind "multihot"); in both
cases dim = total number of classes. A block of zeros means "attribute not specified".
"""
import json

import numpy as np


class LabelSpec:
    """Named categorical attributes and their one-hot encoding.

    Args:
      attributes: mapping (or sequence of pairs) attribute name -> sequence of class names.
    """

    def __init__(self, attributes):
        pairs = list(attributes.items()) if hasattr(attributes, "items") else list(attributes)
        if not pairs:
            raise ValueError("a LabelSpec needs at least one attribute")
        self.attributes = tuple((str(name), tuple(str(c) for c in classes)) for name, classes in pairs)
        names = [name for name, _ in self.attributes]
        if len(set(names)) != len(names):
            raise ValueError(f"attribute names must be unique, got {names}")
        for name, classes in self.attributes:
            if len(classes) < 2 or len(set(classes)) != len(classes):
                raise ValueError(f"attribute {name!r} needs >= 2 distinct class names, got {classes}")
            if any(sep in name + "".join(classes) for sep in ",="):
                raise ValueError(f"attribute {name!r}: names may not contain ',' or '='")
        offsets = np.cumsum([0] + [len(classes) for _, classes in self.attributes])
        self._offsets = {name: int(o) for (name, _), o in zip(self.attributes, offsets)}
        self.dim = int(offsets[-1])

    @property
    def kind(self):
        """"onehot" for a single attribute (one-of-K), "multihot" for several."""
        return "onehot" if len(self.attributes) == 1 else "multihot"

    @property
    def names(self):
        return tuple(name for name, _ in self.attributes)

    def classes(self, name):
        """Class names of attribute `name`."""
        return dict(self.attributes)[self._check_name(name)]

    def _check_name(self, name):
        if name not in self._offsets:
            raise ValueError(f"unknown attribute {name!r}: choose one of {', '.join(self.names)}")
        return name

    def class_index(self, name, value):
        """Index of class `value` (a class name, or an int index) within attribute `name`."""
        classes = self.classes(name)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if 0 <= value < len(classes):
                return int(value)
        elif str(value) in classes:
            return classes.index(str(value))
        raise ValueError(f"unknown class {value!r} for attribute {name!r}: choose one of "
                         f"{', '.join(classes)}")

    def column(self, name, value):
        """Position in the label vector of class `value` of attribute `name`."""
        return self._offsets[self._check_name(name)] + self.class_index(name, value)

    def encode(self, values, allow_missing=False):
        """{attribute: class name or index} -> float32 [dim]; missing attributes give zero blocks."""
        vector = np.zeros([self.dim], np.float32)
        missing = [name for name in self.names if name not in values]
        if missing and not allow_missing:
            raise ValueError(f"missing attributes {', '.join(missing)}: give a class for each")
        for name, value in values.items():
            vector[self.column(name, value)] = 1.0
        return vector

    def parse(self, text):
        """"hair_color=blonde,mouth_open=1" -> float32 [dim] (unnamed attributes stay zero)."""
        values = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            if "=" not in item:
                raise ValueError(f"cannot parse {item!r}: write attribute=class, e.g. "
                                 f"{self.names[0]}={self.attributes[0][1][0]}")
            name, value = (part.strip() for part in item.split("=", 1))
            self.class_index(name, value)  # validates before the duplicate check below
            if name in values:
                raise ValueError(f"attribute {name!r} given twice in {text!r}: give it once")
            values[name] = value
        return self.encode(values, allow_missing=True)

    def decode(self, vector):
        """float [dim] -> {attribute: class name} by argmax per block (all-zero blocks omitted)."""
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.shape[0] != self.dim:
            raise ValueError(f"label vector has size {vector.shape[0]}, this spec needs {self.dim} "
                             f"({self.describe()})")
        decoded = {}
        for name, classes in self.attributes:
            block = vector[self._offsets[name]:self._offsets[name] + len(classes)]
            if np.any(block != 0):
                decoded[name] = classes[int(np.argmax(block))]
        return decoded

    def format(self, vector):
        """Short text of a label vector, e.g. "hair_color=blonde,mouth_open=1" (parse's inverse)."""
        return ",".join(f"{name}={value}" for name, value in self.decode(vector).items())

    def describe(self):
        return "; ".join(f"{name}: {'/'.join(classes)}" for name, classes in self.attributes)

    def to_json(self):
        """JSON text that from_json reads back."""
        return json.dumps({"kind": self.kind,
                           "attributes": [{"name": n, "classes": list(c)} for n, c in self.attributes]})

    @classmethod
    def from_json(cls, data):
        """Inverse of to_json; accepts the JSON text or the already-parsed object."""
        obj = json.loads(data) if isinstance(data, (str, bytes)) else data
        try:
            return cls([(a["name"], a["classes"]) for a in obj["attributes"]])
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a LabelSpec JSON object ({e!r}): expected "
                             '{"attributes": [{"name": ..., "classes": [...]}, ...]}') from None

    def __eq__(self, other):
        return isinstance(other, LabelSpec) and self.attributes == other.attributes

    def __hash__(self):
        return hash(self.attributes)

    def __repr__(self):
        return f"LabelSpec({dict(self.attributes)!r})"
