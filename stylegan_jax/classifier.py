"""The attribute classifier that judges conditional generators: a small CNN on 64x32 portraits.

Trained on the labelled synthetic portraits (experiments/train_classifier.py) and shipped in
stylegan_jax/assets/ (params as flax msgpack, a JSON beside it with the LabelSpec, the training
command and the held-out accuracy). `load_attribute_classifier()` gives a callable:

    judge = load_attribute_classifier()
    probabilities = judge(images)      # images [-1, 1] NHWC at any stage size -> {attr: [N, K]}

Images of other sizes are brought to 64x32 first (area averaging down, nearest-neighbour up, as the
progressive networks resample), and training mixes in such blurred copies, so low-resolution
stages are judged too (fine details such as eye colour need about 32x16 or more).
"""
import json
import os
from typing import Dict, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from tqdm import tqdm

from stylegan_jax import conditional, layers
from stylegan_jax.atomic import write_bytes_atomically
from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.utils import read_json

INPUT_SHAPE = (64, 32)
ASSET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
DEFAULT_PATH = os.path.join(ASSET_DIR, "attribute_classifier.msgpack")
WIDTHS = (16, 32, 48, 48)  # conv channels per resolution, 64x32 down to 8x4 (~60k parameters)


class AttributeClassifierNet(nn.Module):
    """images [N, 64, 32, 3] in [-1, 1] -> logits [N, label_size] (one block per attribute)."""
    label_size: int                          # width of the LabelSpec vector
    widths: Tuple[int, ...] = WIDTHS         # conv channels per resolution, 64x32 down to 8x4

    @nn.compact
    def __call__(self, images):
        x = images.astype(jnp.float32)
        for i, width in enumerate(self.widths):
            x = nn.relu(nn.Conv(width, (3, 3), name=f"conv{i}")(x))
            if i < len(self.widths) - 1:
                x = layers.downscale(x)
        # Flatten rather than pool: where a colour is (hair, iris, band) tells the attributes apart.
        return nn.Dense(self.label_size, name="logits")(x.reshape(x.shape[0], -1))


def to_input_shape(images, shape=INPUT_SHAPE):
    """Images [N, H, W, C] -> [N, *shape, C]: integer area downscaling or nearest upscaling."""
    height, width = images.shape[1:3]
    if (height, width) == tuple(shape):
        return images
    if height % shape[0] == 0 and width % shape[1] == 0 and height // shape[0] == width // shape[1]:
        return layers.downscale(images, height // shape[0])
    if shape[0] % height == 0 and shape[1] % width == 0 and shape[0] // height == shape[1] // width:
        return layers.upscale(images, shape[0] // height)
    return jax.image.resize(images, (images.shape[0], *shape, images.shape[3]), "linear", antialias=True)


def degrade(rng, images, prob: float = 0.3):
    """Training augmentation: mirror half the images; replace `prob` of them by a 2x or 4x
    downscaled-then-upscaled copy (what a lower growth stage looks like at 64x32)."""
    k_flip, k_pick, k_factor = jax.random.split(rng, 3)
    n = images.shape[0]
    images = jnp.where(jax.random.bernoulli(k_flip, 0.5, (n, 1, 1, 1)), images[:, :, ::-1], images)
    coarse2 = layers.upscale(layers.downscale(images, 2), 2)
    coarse4 = layers.upscale(layers.downscale(images, 4), 4)
    coarse = jnp.where(jax.random.bernoulli(k_factor, 0.5, (n, 1, 1, 1)), coarse2, coarse4)
    return jnp.where(jax.random.bernoulli(k_pick, prob, (n, 1, 1, 1)), coarse, images)


def train_classifier(images, labels, spec: LabelSpec, *, steps: int, batch_size: int = 64,
                     learning_rate: float = 2e-3, seed: int = 0, widths=WIDTHS,
                     degrade_prob: float = 0.3, progress: bool = True):
    """Trains the classifier on images [N, 64, 32, 3] in [-1, 1] with labels [N, spec.dim].

    Adam with a cosine-decayed learning rate, softmax cross-entropy per attribute. Returns params.
    """
    labels = conditional.check_labels(labels, spec)
    if images.shape[1:3] != INPUT_SHAPE:
        raise ValueError(f"train the classifier on {INPUT_SHAPE[0]}x{INPUT_SHAPE[1]} images, got "
                         f"{images.shape[1]}x{images.shape[2]}: load the data at that resolution")
    net = AttributeClassifierNet(spec.dim, tuple(widths))
    groups = conditional.attribute_groups(spec)
    k_init, k_train = jax.random.split(jax.random.key(seed))
    params = jax.jit(net.init)(k_init, jnp.zeros((1, *images.shape[1:]), jnp.float32))["params"]
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, x, y, rng):
        def loss_fn(p):
            logits = net.apply({"params": p}, degrade(rng, x, degrade_prob))
            return conditional.classification_loss(logits, y, groups)
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    order = np.random.default_rng(seed)
    bar = tqdm(range(steps), desc="classifier", disable=not progress, mininterval=5.0)
    for i in bar:
        pick = order.integers(0, len(images), batch_size)
        params, opt_state, loss = step(params, opt_state, images[pick], labels[pick],
                                       jax.random.fold_in(k_train, i))
        if i % 50 == 0:
            bar.set_postfix(loss=f"{float(loss):.3f}")
    return params


class AttributeClassifier:
    """A trained classifier: callable images [-1, 1] NHWC (any size) -> {attribute: probs [N, K]}."""

    def __init__(self, params, spec: LabelSpec, widths=WIDTHS, batch_size: int = 256):
        self.spec = spec
        self.params = params
        self.groups = conditional.attribute_groups(spec)
        self.batch_size = batch_size
        net = AttributeClassifierNet(spec.dim, tuple(widths))
        self._logits = jax.jit(lambda p, x: net.apply({"params": p}, to_input_shape(x)))

    def logits(self, images) -> np.ndarray:
        """Logits [N, spec.dim] of images [N, H, W, 3] in [-1, 1], in batches."""
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be NHWC RGB in [-1, 1], got shape {images.shape}")
        chunks = [np.asarray(self._logits(self.params, images[i:i + self.batch_size]))
                  for i in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros([0, self.spec.dim], np.float32)

    def __call__(self, images) -> Dict[str, np.ndarray]:
        return {name: np.asarray(p) for name, p in
                conditional.attribute_probabilities(jnp.asarray(self.logits(images)), self.groups).items()}

    def accuracy(self, images, labels) -> Dict[str, float]:
        """Per-attribute accuracy of the argmax class against label vectors [N, dim].

        Examples whose block for an attribute is all zero (unspecified) do not count for it.
        """
        labels = conditional.check_labels(labels, self.spec)
        probabilities = self(images)
        result = {}
        for name, offset, k in self.groups:
            block = labels[:, offset:offset + k]
            specified = block.sum(axis=1) > 0
            correct = np.argmax(probabilities[name], axis=1) == np.argmax(block, axis=1)
            result[name] = float(correct[specified].mean()) if specified.any() else float("nan")
        return result


def metadata_path(path: str) -> str:
    """The JSON that sits beside a classifier's msgpack file."""
    return os.path.splitext(path)[0] + ".json"


def save_attribute_classifier(path: str, params, spec: LabelSpec, widths, info: dict):
    """Writes params (flax msgpack) and the JSON metadata (spec, widths, `info`) atomically."""
    meta = {"label_spec": json.loads(spec.to_json()), "widths": list(widths),
            "input_shape": list(INPUT_SHAPE), **info}
    for target, data in ((path, serialization.to_bytes(jax.device_get(params))),
                         (metadata_path(path), json.dumps(meta, indent=1).encode())):
        write_bytes_atomically(target, data)


def load_attribute_classifier(path: str = DEFAULT_PATH) -> AttributeClassifier:
    """The classifier saved at `path` (default: the shipped synthetic-portraits judge)."""
    meta_file = metadata_path(path)
    missing = ("no attribute classifier at {}: train one with "
               "python -m experiments.train_classifier --out=PATH")
    if not os.path.isfile(path):
        raise FileNotFoundError(missing.format(path))
    meta = read_json(meta_file, missing.format(meta_file))
    with open(path, "rb") as f:
        params = serialization.msgpack_restore(f.read())
    return AttributeClassifier(params, LabelSpec.from_json(meta["label_spec"]), tuple(meta["widths"]))
