"""Moving in latent space: interpolation, attribute directions, style mixing.

* lerp in W (the intermediate latent is where StyleGAN's paths are smooth: its perceptual path
  length is lower than Z's)
  and slerp in Z (z is Gaussian, so straight lines would pass through unlikely short vectors).
* Attribute vectors: the mean w of images with an attribute minus the mean w of the
  rest. Which images have it may come from dataset labels (a conditional generator's labels), from
  an attribute classifier run on generated images, or from images a person tagged.
* Style mixing: layers before a crossover take one image's w, the rest the other's.
"""
import dataclasses
from typing import Callable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np


def lerp_w(w0, w1, t) -> np.ndarray:
    """w0 + t (w1 - w0); t may be a scalar or a sequence (one output per t). Exact at t = 0, 1."""
    w0, w1 = np.asarray(w0, np.float32), np.asarray(w1, np.float32)
    t = np.asarray(t, np.float32)
    shaped = t.reshape(t.shape + (1,) * w0.ndim)
    out = np.where(shaped == 1, w1, (1 - shaped) * w0 + shaped * w1)
    return out.astype(np.float32)


def slerp_z(z0, z1, t) -> np.ndarray:
    """Spherical interpolation of z's (along the last axis); t scalar or sequence. Exact at t = 0, 1."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    t = np.asarray(t, np.float64)
    shaped = t.reshape(t.shape + (1,) * z0.ndim)
    n0, n1 = np.linalg.norm(z0, axis=-1, keepdims=True), np.linalg.norm(z1, axis=-1, keepdims=True)
    cos = np.clip(np.sum(z0 * z1, axis=-1, keepdims=True) / np.maximum(n0 * n1, 1e-30), -1, 1)
    omega = np.arccos(cos)
    sin = np.sin(omega)
    straight = sin < 1e-6  # (anti)parallel: fall back to lerp
    a = np.where(straight, 1 - shaped, np.sin((1 - shaped) * omega) / np.where(straight, 1, sin))
    b = np.where(straight, shaped, np.sin(shaped * omega) / np.where(straight, 1, sin))
    out = a * z0 + b * z1
    out = np.where(shaped == 0, z0, np.where(shaped == 1, z1, out))
    return out.astype(np.float32)


def attribute_vector(w, has_attribute, controls=None) -> np.ndarray:
    """Mean w (layer 0) of images with the attribute minus the mean of the others: [dlatent].

    controls: other attributes' classes [N] or [N, M] (ints, one column per attribute) to hold
    fixed. Attributes that come together in the samples (hair colour with eye colour, say) make
    the plain difference of means move both; with controls the vector is the attribute's
    coefficient in a least-squares fit of w on the attribute and every control's classes (one
    indicator per class but the first), the difference of means within groups of equal
    controls. With no controls that fit gives exactly the difference of means."""
    w = np.asarray(w, np.float32)
    w = w[:, 0] if w.ndim == 3 else w
    has = np.asarray(has_attribute, bool)
    if has.shape != (w.shape[0],):
        raise ValueError(f"need one tag per w: {w.shape[0]} w's, {has.shape} tags")
    if has.all() or not has.any():
        raise ValueError(f"an attribute vector needs images with and without the attribute; "
                         f"got {int(has.sum())} of {has.size} with it")
    if controls is None:
        return (w[has].mean(axis=0) - w[~has].mean(axis=0)).astype(np.float32)
    controls = np.asarray(controls)
    controls = controls[:, None] if controls.ndim == 1 else controls
    if controls.ndim != 2 or controls.shape[0] != w.shape[0]:
        raise ValueError(f"controls must have shape [{w.shape[0]}] or [{w.shape[0]}, M], got "
                         f"{list(controls.shape)}")
    columns = [np.ones(w.shape[0]), has.astype(np.float64)]
    for column in controls.T:
        columns += [(column == value).astype(np.float64) for value in np.unique(column)[1:]]
    design = np.stack(columns, axis=1)
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise ValueError("the attribute cannot be told apart from the controls (it is determined "
                         "by them in these samples): drop a control or sample more images")
    coefficients, *_ = np.linalg.lstsq(design, w.astype(np.float64), rcond=None)
    return coefficients[1].astype(np.float32)


def classifier_tags(images, classifier: Callable, attribute: Union[str, int],
                    threshold: float = 0.5) -> np.ndarray:
    """bool [N]: whether the classifier's probability of `attribute` exceeds threshold.

    classifier: images in [-1, 1] [N, H, W, 3] -> {attribute name: probabilities [N], or [N, 2]
    for a two-class attribute (column 1 = present, as stylegan_jax.classifier reports "0"/"1")},
    or an array [N, attributes] indexed by an int `attribute`.
    """
    outputs = classifier(images)
    if isinstance(outputs, Mapping):
        if attribute not in outputs:
            raise ValueError(f"unknown attribute {attribute!r}: the classifier reports "
                             f"{', '.join(map(str, outputs))}")
        probabilities = np.asarray(outputs[attribute], np.float32)
        if probabilities.ndim == 2 and probabilities.shape[1] == 2:
            probabilities = probabilities[:, 1]
        if probabilities.ndim != 1:
            raise ValueError(f"attribute {attribute!r} has {list(probabilities.shape)} outputs: "
                             f"tags need a two-class attribute")
        return probabilities > threshold
    probabilities = np.asarray(outputs, np.float32)
    if probabilities.ndim != 2 or not isinstance(attribute, int) or not 0 <= attribute < probabilities.shape[1]:
        raise ValueError(f"attribute {attribute!r} out of range for classifier outputs of shape "
                         f"{list(probabilities.shape)}")
    return probabilities[:, attribute] > threshold


@dataclasses.dataclass
class Direction:
    """A direction in W applied with a strength to layers [start, stop) (None = all)."""
    vector: np.ndarray
    strength: float = 1.0
    layers: Optional[Tuple[int, int]] = None
    name: str = ""

    def check(self, num_layers: int, dlatent_size: int) -> "Direction":
        """ValueError when it does not fit a model."""
        if np.shape(self.vector) != (dlatent_size,):
            raise ValueError(f"direction {self.name!r} has {np.size(self.vector)} values, the model's "
                             f"w has {dlatent_size}")
        if self.layers is not None and not 0 <= self.layers[0] < self.layers[1] <= num_layers:
            raise ValueError(f"direction {self.name!r} layers {list(self.layers)} must satisfy "
                             f"0 <= start < stop <= {num_layers}")
        return self

    def to_json(self) -> dict:
        return {"name": self.name, "vector": np.asarray(self.vector, np.float32).tolist(),
                "strength": float(self.strength),
                "layers": None if self.layers is None else [int(l) for l in self.layers]}

    @classmethod
    def from_json(cls, spec, where: str = "direction") -> "Direction":
        """From to_json's dict; ValueError naming the bad field."""
        if not isinstance(spec, dict) or "vector" not in spec:
            raise ValueError(f"recipe field {where} must be an object with a 'vector'")
        unknown = set(spec) - {"name", "vector", "strength", "layers"}
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)} in recipe field {where}")
        layers = spec.get("layers")
        if layers is not None and (not isinstance(layers, list) or len(layers) != 2 or not all(
                isinstance(l, int) and not isinstance(l, bool) and abs(l) < 2**31 for l in layers)):
            raise ValueError(f"recipe field {where}.layers must be null or [start, stop] (integers)")
        try:
            vector = np.asarray(spec["vector"], np.float32)
            strength = float(spec.get("strength", 1.0))
            layers = None if layers is None else (int(layers[0]), int(layers[1]))
        except (TypeError, ValueError, IndexError, OverflowError):
            raise ValueError(f"recipe field {where} has a malformed vector, strength or layers") from None
        if vector.ndim != 1 or not np.all(np.isfinite(vector)) or not np.isfinite(strength):
            raise ValueError(f"recipe field {where}.vector must be a flat list of finite numbers")
        return cls(vector, strength, layers, str(spec.get("name", "")))


def apply_directions(w, directions: Sequence[Direction], scale: float = 1.0) -> np.ndarray:
    """w [N, layers, dlatent] + scale * sum of strength * vector over each direction's layers."""
    w = np.array(w, np.float32)
    for d in directions:
        start, stop = d.layers if d.layers is not None else (0, w.shape[1])
        w[:, start:stop] += np.float32(scale * d.strength) * np.asarray(d.vector, np.float32)
    return w


def style_mix(w_coarse, w_fine, crossover: int) -> np.ndarray:
    """Layers < crossover from w_coarse, the rest from w_fine (both [N, layers, dlatent])."""
    w_coarse, w_fine = np.asarray(w_coarse, np.float32), np.asarray(w_fine, np.float32)
    if w_coarse.shape != w_fine.shape:
        raise ValueError(f"style mixing needs w's of one shape, got {list(w_coarse.shape)} and "
                         f"{list(w_fine.shape)}")
    if not 0 <= crossover <= w_coarse.shape[1]:
        raise ValueError(f"crossover layer {crossover} out of range 0-{w_coarse.shape[1]}")
    keep = (np.arange(w_coarse.shape[1]) < crossover)[None, :, None]
    return np.where(keep, w_coarse, w_fine)
