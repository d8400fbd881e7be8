"""Inception-v3 as used for FID (the TTUR / pytorch-fid "FID Inception"), in Flax, inference only.

The reference FID network is TensorFlow's 2015-12-05 Inception graph. pytorch-fid ports it as
torchvision's Inception3 with four patches, reproduced here because the weights only give the
reference features with them:
  * Mixed_5b..5d (InceptionA), Mixed_6b..6e (InceptionC), Mixed_7b (InceptionE): the 3x3 average
    pool of the pool branch ignores the zero padding (TF semantics; count_include_pad=False);
  * Mixed_7c (the second InceptionE): that pool branch uses a 3x3 *max* pool instead.
Inputs are resized to 299x299 (bilinear, half-pixel centres, no antialiasing, like
torch.nn.functional.interpolate(align_corners=False)) and taken in [-1, 1]; the output is the
2048-d global average of Mixed_7c ("pool3").

Weights: the user provides them (nothing downloads). The supported file is a flat .npz whose keys
and array layouts are exactly pytorch-fid's state dict (pt_inception-2015-12-05-6726825d.pth),
which convert_fid_weights.py writes from the .pth. Name mapping (torch -> Flax variables):
    <path>.conv.weight       [out, in, kh, kw] -> params/<path>/conv/kernel [kh, kw, in, out]
    <path>.bn.weight         [C]               -> params/<path>/bn/scale
    <path>.bn.bias           [C]               -> params/<path>/bn/bias
    <path>.bn.running_mean   [C]               -> batch_stats/<path>/bn/mean
    <path>.bn.running_var    [C]               -> batch_stats/<path>/bn/var
where <path> is a dotted module path such as "Mixed_6b.branch7x7dbl_3" ("/"-joined in Flax).
Ignored keys: "*.num_batches_tracked" and the 1008-way classifier "fc.weight" / "fc.bias".
"""
from __future__ import annotations

import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.metrics.images import as_signed_unit_images

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILE
INPUT_SIZE = 299
FEATURE_DIM = 2048
BATCH_NORM_EPSILON = 1e-3          # torchvision BasicConv2d (and the TF graph)
IGNORED_KEY_SUFFIXES = (".num_batches_tracked",)
IGNORED_KEYS = ("fc.weight", "fc.bias")


class BasicConv(nn.Module):
    """Conv (no bias) -> batch norm with stored statistics -> ReLU; padding is symmetric (ph, pw)."""
    features: int
    kernel_size: tuple[int, int]
    strides: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x):
        pad_h, pad_w = self.padding
        x = nn.Conv(self.features, self.kernel_size, strides=self.strides,
                    padding=((pad_h, pad_h), (pad_w, pad_w)), use_bias=False, name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=BATCH_NORM_EPSILON, name="bn")(x)
        return nn.relu(x)


def avg_pool_3x3_same(x):
    """3x3 stride-1 average pool that averages only the in-image pixels (TF 'SAME' semantics)."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def max_pool_3x3_same(x):
    """3x3 stride-1 max pool, padded with -inf (so the padding never wins)."""
    return nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def max_pool_3x3_stride2(x):
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b..d): 1x1, 5x5, double 3x3 and pool branches."""
    pool_features: int

    @nn.compact
    def __call__(self, x):
        branch1x1 = BasicConv(64, (1, 1), name="branch1x1")(x)
        branch5x5 = BasicConv(48, (1, 1), name="branch5x5_1")(x)
        branch5x5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(branch5x5)
        branch3x3dbl = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
        branch3x3dbl = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(branch3x3dbl)
        branch3x3dbl = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(branch3x3dbl)
        branch_pool = BasicConv(self.pool_features, (1, 1), name="branch_pool")(avg_pool_3x3_same(x))
        return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction (Mixed_6a)."""

    @nn.compact
    def __call__(self, x):
        branch3x3 = BasicConv(384, (3, 3), strides=2, name="branch3x3")(x)
        branch3x3dbl = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
        branch3x3dbl = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(branch3x3dbl)
        branch3x3dbl = BasicConv(96, (3, 3), strides=2, name="branch3x3dbl_3")(branch3x3dbl)
        return jnp.concatenate([branch3x3, branch3x3dbl, max_pool_3x3_stride2(x)], axis=-1)


class InceptionC(nn.Module):
    """17x17 block (Mixed_6b..e) with factorised 7x7 convolutions."""
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        branch1x1 = BasicConv(192, (1, 1), name="branch1x1")(x)
        branch7x7 = BasicConv(c7, (1, 1), name="branch7x7_1")(x)
        branch7x7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(branch7x7)
        branch7x7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(branch7x7)
        dbl = BasicConv(c7, (1, 1), name="branch7x7dbl_1")(x)
        dbl = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(dbl)
        dbl = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(dbl)
        dbl = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(dbl)
        dbl = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(dbl)
        branch_pool = BasicConv(192, (1, 1), name="branch_pool")(avg_pool_3x3_same(x))
        return jnp.concatenate([branch1x1, branch7x7, dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction (Mixed_7a)."""

    @nn.compact
    def __call__(self, x):
        branch3x3 = BasicConv(192, (1, 1), name="branch3x3_1")(x)
        branch3x3 = BasicConv(320, (3, 3), strides=2, name="branch3x3_2")(branch3x3)
        branch7x7x3 = BasicConv(192, (1, 1), name="branch7x7x3_1")(x)
        branch7x7x3 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(branch7x7x3)
        branch7x7x3 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(branch7x7x3)
        branch7x7x3 = BasicConv(192, (3, 3), strides=2, name="branch7x7x3_4")(branch7x7x3)
        return jnp.concatenate([branch3x3, branch7x7x3, max_pool_3x3_stride2(x)], axis=-1)


class InceptionE(nn.Module):
    """8x8 block (Mixed_7b with an average pool branch, Mixed_7c with the FID graph's max pool)."""
    pool: str = "avg"

    @nn.compact
    def __call__(self, x):
        branch1x1 = BasicConv(320, (1, 1), name="branch1x1")(x)
        branch3x3 = BasicConv(384, (1, 1), name="branch3x3_1")(x)
        branch3x3 = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(branch3x3),
                                     BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(branch3x3)], axis=-1)
        dbl = BasicConv(448, (1, 1), name="branch3x3dbl_1")(x)
        dbl = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(dbl)
        dbl = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(dbl),
                               BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(dbl)], axis=-1)
        pooled = max_pool_3x3_same(x) if self.pool == "max" else avg_pool_3x3_same(x)
        branch_pool = BasicConv(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([branch1x1, branch3x3, dbl, branch_pool], axis=-1)


class FIDInceptionV3(nn.Module):
    """images [N, H, W, 3] in [-1, 1] -> pool3 features [N, 2048].

    `resize=False` skips the 299x299 resize (inputs must then be at least 75x75); only for tests
    and experiments, FID numbers need the resize.
    """
    resize: bool = True

    @nn.compact
    def __call__(self, images):
        x = images.astype(jnp.float32)
        if self.resize:
            x = jax.image.resize(x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, x.shape[3]), "bilinear", antialias=False)
        x = BasicConv(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
        x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
        x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
        x = max_pool_3x3_stride2(x)
        x = BasicConv(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
        x = max_pool_3x3_stride2(x)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        x = InceptionC(128, name="Mixed_6b")(x)
        x = InceptionC(160, name="Mixed_6c")(x)
        x = InceptionC(160, name="Mixed_6d")(x)
        x = InceptionC(192, name="Mixed_6e")(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE(pool="avg", name="Mixed_7b")(x)
        x = InceptionE(pool="max", name="Mixed_7c")(x)
        return jnp.mean(x, axis=(1, 2))


def variable_shapes(model: FIDInceptionV3 | None = None) -> dict:
    """Shape tree of the model's variables ({'params': ..., 'batch_stats': ...}), without computing."""
    model = model or FIDInceptionV3()
    images = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
    return jax.eval_shape(model.init, jax.random.PRNGKey(0), images)


# (Flax collection, Flax leaf name) -> (torch suffix under "<path>.", transpose to Flax layout)
_LEAF_TO_TORCH = {
    ("params", "kernel"): ("weight", (2, 3, 1, 0)),
    ("params", "scale"): ("weight", None),
    ("params", "bias"): ("bias", None),
    ("batch_stats", "mean"): ("running_mean", None),
    ("batch_stats", "var"): ("running_var", None),
}


def torch_name(flax_path: tuple[str, ...]) -> tuple[str, tuple | None]:
    """('params', 'Mixed_5b', 'branch1x1', 'conv', 'kernel') -> ('Mixed_5b.branch1x1.conv.weight', transpose)."""
    collection, *modules, leaf = flax_path
    suffix, transpose = _LEAF_TO_TORCH[(collection, leaf)]
    return ".".join(modules + [suffix]), transpose


def _is_ignored(key: str) -> bool:
    return key in IGNORED_KEYS or key.endswith(IGNORED_KEY_SUFFIXES)


def variables_from_state_dict(state_dict, source: str = "state dict") -> dict:
    """Flax variables from a pytorch-fid style mapping of name -> array (see the module docstring).

    Raises ValueError naming the first missing, unexpected or wrongly shaped entries.
    """
    state_dict = {key: value for key, value in state_dict.items() if not _is_ignored(key)}
    shapes = variable_shapes()
    flat_shapes = jax.tree_util.tree_flatten_with_path(shapes)[0]
    leaves, expected_keys = [], set()
    for path, shape_struct in flat_shapes:
        flax_path = tuple(entry.key for entry in path)
        key, transpose = torch_name(flax_path)
        expected_keys.add(key)
        if key not in state_dict:
            missing = sorted(set(torch_name(tuple(e.key for e in p))[0] for p, _ in flat_shapes) - set(state_dict))
            raise ValueError(f"{source} is not an FID Inception state dict: {len(missing)} missing keys, e.g. "
                             f"{missing[:3]}; convert {FID_WEIGHTS_FILE} with "
                             "python -m stylegan_jax.metrics.convert_fid_weights")
        array = np.asarray(state_dict[key], np.float32)
        if transpose is not None and array.ndim == 4:
            array = array.transpose(transpose)
        if array.shape != shape_struct.shape:
            raise ValueError(f"{source}: '{key}' has shape {np.shape(state_dict[key])}, the FID Inception "
                             f"expects {shape_struct.shape} after converting to Flax layout")
        leaves.append(jnp.asarray(array))
    unexpected = sorted(set(state_dict) - expected_keys)
    if unexpected:
        raise ValueError(f"{source} has {len(unexpected)} keys the FID Inception does not use, e.g. "
                         f"{unexpected[:3]}: is it the pytorch-fid {FID_WEIGHTS_FILE}?")
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shapes), leaves)


def load_fid_inception(path: str) -> dict:
    """Load FID Inception variables from the .npz written by convert_fid_weights (or of the same keys)."""
    path = os.fspath(path)
    howto = (f"download {FID_WEIGHTS_URL} and convert it with "
             f"'python -m stylegan_jax.metrics.convert_fid_weights {FID_WEIGHTS_FILE} fid_inception.npz' (needs torch)")
    if not os.path.exists(path):
        raise FileNotFoundError(f"FID Inception weights not found at '{path}': {howto}")
    if not path.endswith(".npz"):
        raise ValueError(f"FID Inception weights must be a .npz file, got '{path}': {howto}")
    with np.load(path) as archive:
        return variables_from_state_dict({key: archive[key] for key in archive.files}, source=f"'{path}'")


@functools.partial(jax.jit, static_argnames=("resize",))
def _features(variables, images, resize=True):
    return FIDInceptionV3(resize=resize).apply(variables, images)


def inception_features(variables, images, *, batch_size: int = 50, resize: bool = True) -> np.ndarray:
    """Pool3 features [N, 2048] of NHWC images (uint8 or [-1, 1] float), computed in fixed-size batches.

    The last batch is padded to `batch_size` so the network compiles once per image shape.
    """
    images = as_signed_unit_images(images)
    features = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start:start + batch_size]
        count = batch.shape[0]
        if count < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - count,) + batch.shape[1:], batch.dtype)])
        features.append(np.asarray(_features(variables, batch, resize=resize))[:count])
    return np.concatenate(features) if features else np.zeros((0, FEATURE_DIM), np.float32)
