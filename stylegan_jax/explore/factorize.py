"""Directions in W found without labels: SeFa (the style weights' factorization) and GANSpace (PCA of w).

* SeFa (closed-form factorization, Shen & Zhou, arXiv 2007.06600): each synthesis layer turns w
  into its AdaIN style by an affine map, style = A w + b. Moving w by a unit n moves the styles
  by A n, so the directions that change the chosen layers' styles most are the unit n maximising
  |A n|^2 = n^T A^T A n: the eigenvectors of A^T A with the largest eigenvalues. A stacks the
  chosen layers' style weights (rows: style outputs, columns: w's components), each layer's
  whole style -- the AdaIN scale half and the bias half, as the official code does for StyleGAN
  (it concatenates the style dense layers' weights) -- unless `scale_only`. The weights are the
  ones applied at runtime: the stored equalized-LR kernel times layers.equalized_scale. Every
  style layer has the same fan-in (the w size) and gain, so that constant scales the eigenvalues
  only, never the directions. The official implementation also scales each output's row of A to
  unit norm before factorizing (the paper does not): `unit_rows` does that.
* GANSpace (Härkönen et al., arXiv 2004.02546): PCA of w = mapping(z) over random z; the
  principal axes in order of variance, with the standard deviation of w along each. The mapping
  gives every layer the same w, so the layer range does not change the axes: it only says which
  layers a direction moves (GANSpace's "layer-wise edits").

Both give `latent.Direction`s over the layer range [start, stop) (what recipes store and apply,
exactly like attribute vectors), named e.g. "sefa 0 (layers 0-3)" (first to last layer, both
included). Their scale: a GANSpace direction is one standard deviation of w along its axis (a
strength counts standard deviations, as in GANSpace's sliders); a SeFa direction is the unit
eigenvector (a strength is a distance in W), or with num_samples, the eigenvector times the
standard deviation of sampled w along it, so that its strengths count standard deviations too
(what the explorer's page uses: along the bundled model's top SeFa directions w's spread is
0.36 to 2.1, so one slider range in distance would be 8 times too wide for some of them). Signs
are fixed so that each vector's largest-magnitude component is positive (eigenvectors have no
sign of their own).
"""
import dataclasses
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from stylegan_jax.explore.latent import Direction
from stylegan_jax.layers import StyleModulation, equalized_scale

METHODS = ("sefa", "ganspace")

Layers = Optional[Union[Tuple[int, int], Sequence[int], range]]


@dataclasses.dataclass
class Factors:
    """Directions found by `method` over layers [start, stop), best first, with their values:
    SeFa's eigenvalues of A^T A, or GANSpace's standard deviations of w along each axis."""
    method: str
    layers: Tuple[int, int]
    directions: List[Direction]
    values: np.ndarray

    def to_json(self) -> dict:
        return {"method": self.method, "layers": [int(l) for l in self.layers],
                "directions": [d.to_json() for d in self.directions],
                "values": [float(v) for v in self.values]}


def layer_range(layers: Layers, num_layers: int) -> Tuple[int, int]:
    """(start, stop) of a layer range: None (all), (start, stop) or a range with step 1;
    ValueError naming the valid range otherwise."""
    if layers is None:
        return 0, num_layers
    if isinstance(layers, range):
        if layers.step != 1:
            raise ValueError(f"a layer range must be contiguous (step 1), got {layers}")
        layers = (layers.start, layers.stop)
    try:
        start, stop = (int(l) for l in layers)
    except (TypeError, ValueError):
        raise ValueError(f"layers must be [start, stop), got {layers!r}") from None
    if not 0 <= start < stop <= num_layers:
        raise ValueError(f"layers [{start}, {stop}) must satisfy 0 <= start < stop <= {num_layers} "
                         f"(the model's layers)")
    return start, stop


def _model(model, params):
    """(Generator module, its parameters) of an Explorer, or of a module with params."""
    if params is None:
        if not hasattr(model, "params"):
            raise ValueError("pass the generator's params with a module (or pass an Explorer)")
        return model.module, model.params
    return getattr(model, "module", model), params


def style_weights(module, params, layers: Layers = None, scale_only: bool = False) -> np.ndarray:
    """A: the style weights of layers [start, stop) as applied at runtime, stacked,
    float64 [outputs, dlatent] (each layer's 2 * channels rows, scale's then bias's; with
    scale_only, the scale's channels only)."""
    start, stop = layer_range(layers, module.num_layers)
    scale = equalized_scale(module.dlatent_size, StyleModulation.GAIN)
    rows = []
    for spec in module.layer_specs[start:stop]:
        kernel = np.asarray(params["synthesis_network"][spec.name]["style"]["dense"]["kernel"],
                            np.float64) * scale  # [dlatent, 2 * channels]
        rows.append((kernel[:, :spec.channels] if scale_only else kernel).T)
    return np.concatenate(rows)


def _signed(vectors: np.ndarray) -> np.ndarray:
    """Each row's sign flipped so that its largest-magnitude component is positive."""
    big = vectors[np.arange(len(vectors)), np.argmax(np.abs(vectors), axis=1)]
    return vectors * np.where(big < 0, -1.0, 1.0)[:, None]


def _top(matrix: np.ndarray, k: int, what: str):
    """(eigenvalues, unit eigenvectors as rows) of a symmetric matrix, the k largest first."""
    if not 1 <= k <= matrix.shape[0]:
        raise ValueError(f"k must be in [1, {matrix.shape[0]}] (the w size), got {k} {what}")
    values, vectors = np.linalg.eigh(matrix)
    order = np.argsort(values)[::-1][:k]
    return np.maximum(values[order], 0.0), _signed(vectors[:, order].T)


def _name(method: str, i: int, start: int, stop: int) -> str:
    return f"{method} {i} (layers {start}-{stop - 1})"


def sefa(model, layers: Layers = None, k: int = 5, *, params=None, unit_rows: bool = False,
         scale_only: bool = False, strength: float = 0.0, num_samples: int = 0,
         seed: int = 0) -> Factors:
    """The top-k SeFa directions of layers [start, stop) (None: all): unit eigenvectors of
    A^T A (A = style_weights), largest eigenvalue first (see the module docstring).

    model: an Explorer, or a Generator module with its params. The directions move the same
    layers and start at `strength` (0: no change until a slider moves them). num_samples > 0
    (an Explorer only): each eigenvector times the standard deviation (ddof 1) of
    Explorer.sample_w(num_samples, seed) along it, so a strength counts standard deviations."""
    module, params = _model(model, params)
    start, stop = layer_range(layers, module.num_layers)
    a = style_weights(module, params, (start, stop), scale_only)
    if unit_rows:
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-30)
    values, vectors = _top(a.T @ a, k, "for sefa")
    if num_samples:
        if not hasattr(model, "sample_w") or num_samples < 2:
            raise ValueError(f"scaling SeFa directions by the spread of w needs an Explorer and "
                             f"num_samples >= 2, got {type(model).__name__} and {num_samples}")
        w = model.sample_w(num_samples, seed).astype(np.float64)
        vectors = vectors * np.std(w @ vectors.T, axis=0, ddof=1)[:, None]
    directions = [Direction(v.astype(np.float32), strength, (start, stop), _name("sefa", i, start, stop))
                  for i, v in enumerate(vectors)]
    return Factors("sefa", (start, stop), directions, values)


def ganspace(explorer, layers: Layers = None, k: int = 5, num_samples: int = 10000, seed: int = 0,
             *, strength: float = 0.0) -> Factors:
    """The top-k principal axes of num_samples sampled w (Explorer.sample_w(num_samples, seed)),
    as directions of one standard deviation over layers [start, stop), largest variance first;
    values are the standard deviations (sample std, ddof 1)."""
    start, stop = layer_range(layers, explorer.num_layers)
    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2 for a covariance, got {num_samples}")
    w = explorer.sample_w(num_samples, seed).astype(np.float64)
    centred = w - w.mean(axis=0)
    variances, axes = _top(centred.T @ centred / (num_samples - 1), k, "for ganspace")
    stds = np.sqrt(variances)
    directions = [Direction((s * v).astype(np.float32), strength, (start, stop),
                            _name("ganspace", i, start, stop))
                  for i, (s, v) in enumerate(zip(stds, axes))]
    return Factors("ganspace", (start, stop), directions, stds)
