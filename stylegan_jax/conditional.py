"""Conditional StyleGAN: label layouts, the ACGAN losses, label sampling and per-class truncation.

Labels are LabelSpec vectors (stylegan_jax/data/labels.py): one one-hot block per attribute, a zero
block meaning "unspecified". The generator always takes them the official way (an embedding
concatenated to z, networks.MappingNetwork); the discriminator's `conditioning` field picks how D
uses them (networks.CONDITIONING_MODES):

* "switch" (official StyleGAN): one D output per label column, the label selects it.
* "projection" (Miyato & Koyama, arXiv 1802.05637): score += <V y, phi(x)>; the logistic loss is
  unchanged, the conditioning lives in D (networks.projection_scores). Optionally (with the label
  switch too) D is matching-aware (Reed et al., arXiv 1605.05396 section 3.1): real images scored
  with one attribute's label changed count as fakes (`mismatched_labels`, `mismatch_loss`,
  config.loss.mismatch_weight), so D learns to check labels on real images, not only on G's
  mistakes.
* "acgan" (Odena et al., arXiv 1610.09585 section 3): D also classifies. D minimizes the
  classification loss on the *real* images (the paper also trains it on fakes; with fakes that are
  still noise early in progressive growing that only teaches the head to label noise), and G
  minimizes the same loss on its fakes against the labels it was asked for.

Classification loss per attribute group: softmax cross-entropy over the group's classes ("softmax",
the exact likelihood of one-of-K blocks; for a yes/no attribute it equals a sigmoid on the logit
difference), or independent sigmoid cross-entropy per label column ("sigmoid", the multi-label tag
formulation). Each attribute's loss is averaged over the examples where it is specified, then the
attributes' losses are summed, so every attribute weighs the same however often it is labelled.

Labels for G during training (`fake_labels`): by default those of the real minibatch (the data's
joint label distribution, as the official loop draws dataset labels); "uniform" asks G for
`sample_labels` instead (every class of every attribute equally often, independently), so rare
classes get as much practice as common ones. The optimal D's log density ratio then gains a term
log p_data(y) / p_fake(y) that does not depend on the image, so for each label the direction G is
pushed in is unchanged (only its non-saturating weight changes). `sample_labels` also draws
evaluation requests.
"""
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.networks import CONDITIONING_MODES, Generator

ACGAN_LOSSES = ("softmax", "sigmoid")
FAKE_LABELS = ("data", "uniform")  # what G is asked for in training (see the module docstring)
# (attribute name, first column, number of classes) per attribute, in label-vector order.
Groups = Tuple[Tuple[str, int, int], ...]


def label_size(spec: Optional[LabelSpec]) -> int:
    """Width of the label vector for G and D: spec.dim, or 0 for unlabelled data."""
    return 0 if spec is None else spec.dim


def attribute_groups(spec: LabelSpec) -> Groups:
    """The spec's attribute blocks as a hashable tuple (static under jit)."""
    groups, offset = [], 0
    for name, classes in spec.attributes:
        groups.append((name, offset, len(classes)))
        offset += len(classes)
    return tuple(groups)


def check_conditioning(conditioning: str, acgan_loss: str = "softmax"):
    """Validates the conditioning mode and ACGAN loss names with a one-line error."""
    if conditioning not in CONDITIONING_MODES:
        raise ValueError(f"unknown conditioning {conditioning!r}: choose one of {', '.join(CONDITIONING_MODES)}")
    if acgan_loss not in ACGAN_LOSSES:
        raise ValueError(f"unknown ACGAN loss {acgan_loss!r}: choose one of {', '.join(ACGAN_LOSSES)}")


def check_fake_labels(mode: str):
    """Validates config.loss.fake_labels with a one-line error."""
    if mode not in FAKE_LABELS:
        raise ValueError(f"unknown loss.fake_labels {mode!r}: choose one of {', '.join(FAKE_LABELS)}")


def fake_labels(mode: str, rng, real_labels, groups: Groups):
    """The labels G is asked for in a training step: the real batch's ("data") or uniformly drawn
    ones ("uniform", see sample_labels); real_labels [N, dim]."""
    check_fake_labels(mode)
    if mode == "data":
        return real_labels
    return sample_labels(rng, groups, real_labels.shape[0]).astype(real_labels.dtype)


def specified_attributes(labels, groups: Groups):
    """[N, len(groups)] bool: which attributes each label row specifies (a non-zero block)."""
    return jnp.stack([jnp.sum(labels[:, o:o + k], axis=1) > 0 for _, o, k in groups], axis=1)


def masked_mean(values, mask):
    """Mean of values [N] over the rows where mask [N] is true; 0 where none is."""
    mask = mask.astype(values.dtype)
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def mismatched_labels(rng, labels, groups: Groups):
    """Wrong labels for the matching-aware D (Reed et al., arXiv 1605.05396 section 3.1).

    Returns (wrong [N, dim], changed [N] bool): each row of labels [N, dim] with one of its
    specified attributes, drawn uniformly, moved to another class, drawn uniformly among the rest.
    A row with no attribute specified stays as it is, and changed is False there.
    """
    k_attr, k_class = jax.random.split(rng)
    batch = labels.shape[0]
    specified = specified_attributes(labels, groups)
    chosen = jnp.argmax(jnp.where(specified, jax.random.uniform(k_attr, specified.shape), -1.0), axis=1)
    shifts = jax.random.uniform(k_class, (batch,))
    blocks = []
    for g, (_, offset, k) in enumerate(groups):
        block = labels[:, offset:offset + k]
        shift = 1 + jnp.floor(shifts * (k - 1)).astype(jnp.int32)  # 1 .. k-1: never the same class
        moved = jax.nn.one_hot((jnp.argmax(block, axis=1) + shift) % k, k, dtype=labels.dtype)
        blocks.append(jnp.where(((chosen == g) & specified[:, g])[:, None], moved, block))
    return jnp.concatenate(blocks, axis=1), jnp.any(specified, axis=1)


def mismatch_loss(mismatched_scores, changed, weight: float = 1.0):
    """Matching-aware D term: real images scored with wrong labels count as fakes,
    weight * mean of softplus(D(x, y_wrong)) over the rows whose label was changed. It trains D's
    use of the labels on real images, the signal projection and the label switch otherwise get
    only from G's mistakes."""
    return weight * masked_mean(jax.nn.softplus(mismatched_scores), changed)


def check_labels(labels, spec: LabelSpec) -> np.ndarray:
    """Label vectors [N, spec.dim] (or one [dim] vector) as float32 [N, dim]; clear error otherwise."""
    labels = np.asarray(labels, np.float32)
    if labels.ndim == 1:
        labels = labels[None]
    if labels.ndim != 2 or labels.shape[1] != spec.dim:
        raise ValueError(f"label vectors must have size {spec.dim} ({spec.describe()}), got shape "
                         f"{labels.shape}: build them with LabelSpec.encode or .parse")
    return labels


def group_log_softmax(logits, groups: Groups):
    """Per-attribute log-softmax of logits [N, dim] (each block normalized on its own)."""
    return jnp.concatenate([jax.nn.log_softmax(logits[:, o:o + k], axis=-1) for _, o, k in groups],
                           axis=-1)


def attribute_probabilities(logits, groups: Groups):
    """{attribute: class probabilities [N, K]} from logits [N, dim] (per-attribute softmax)."""
    return {name: jax.nn.softmax(logits[:, o:o + k], axis=-1) for name, o, k in groups}


def classification_loss(logits, labels, groups: Groups, kind: str = "softmax"):
    """ACGAN's L_C: sum over attributes of the mean (over examples that specify it) loss.

    kind "softmax": cross-entropy of each attribute's one-hot block under its softmax;
    kind "sigmoid": sum over the block's columns of the binary cross-entropy of sigmoid(logit).
    """
    check_conditioning("acgan", kind)
    logits = logits.astype(jnp.float32)
    labels = labels.astype(jnp.float32)
    if kind == "softmax":
        per_column = -labels * group_log_softmax(logits, groups)
    else:
        per_column = jax.nn.softplus(logits) - labels * logits  # -log sigmoid(+-logit)
    specified = specified_attributes(labels, groups)
    total = jnp.zeros((), jnp.float32)
    for g, (_, o, k) in enumerate(groups):
        total += masked_mean(jnp.sum(per_column[:, o:o + k], axis=1), specified[:, g])
    return total


def acgan_d_loss(real_logits, real_labels, groups: Groups, weight: float = 1.0, kind: str = "softmax"):
    """D's auxiliary loss: classify the real images as their labels."""
    return weight * classification_loss(real_logits, real_labels, groups, kind)


def acgan_g_loss(fake_logits, target_labels, groups: Groups, weight: float = 1.0, kind: str = "softmax"):
    """G's auxiliary loss: D's classifier should recognize the labels G was asked for."""
    return weight * classification_loss(fake_logits, target_labels, groups, kind)


def sample_labels(rng, groups: Groups, batch: int):
    """Uniformly random label vectors [batch, dim]: one class per attribute, independently."""
    keys = jax.random.split(rng, len(groups))
    blocks = [jax.nn.one_hot(jax.random.randint(key, (batch,), 0, k), k, dtype=jnp.float32)
              for key, (_, _, k) in zip(keys, groups)]
    return jnp.concatenate(blocks, axis=1)


# ----------------------------------------------------------------------------------------------
# Truncation toward the class centre. Truncating a conditional G toward the global w average
# pulls every image toward the average *class* too (psi -> 0 gives the same face for every label);
# users expect "the typical blonde", i.e. the average w of that label.

def estimate_w_avg_for_labels(G: Generator, g_params, labels, rng, num_samples: int = 1024):
    """E_z[mapping(z, y)] per label vector y, by Monte Carlo: the truncation centre of that label.

    labels [N, dim] -> [N, 1, D]. Runs num_samples latents per label vector through the mapping.
    """
    labels = jnp.asarray(labels, jnp.float32)
    z = jax.random.normal(rng, (num_samples, G.latent_size), jnp.float32)

    def centre(label):
        w = G.apply({"params": g_params}, z, jnp.broadcast_to(label, (num_samples, label.shape[0])),
                    method=Generator.mapping)
        return jnp.mean(w[:, 0], axis=0)

    return jax.lax.map(centre, labels)[:, None, :]


def complete_labels(spec: LabelSpec, text: str, batch: int, rng):
    """[batch, dim] label vectors: the classes `text` names (e.g. "hair_color=blonde,mouth_open=1",
    LabelSpec.parse, whose errors name the valid choices), other attributes uniformly random."""
    requested = spec.parse(text)
    random = np.array(sample_labels(rng, attribute_groups(spec), batch))  # a writable copy
    for _, o, k in attribute_groups(spec):
        if requested[o:o + k].any():
            random[:, o:o + k] = requested[o:o + k]
    return random
