"""TFDS builder "synthetic_portraits": the procedural portraits, generated locally from a seed.

Importing this module registers the builder, so after `import stylegan_jax.data.portraits_tfds`:
    tfds.load("synthetic_portraits")                      # 64x32, 5000 train + 500 test, seed 0
    tfds.load("synthetic_portraits/128x64")               # other sizes: 256x128, 512x256
    tfds.load("synthetic_portraits/64x32_n64_t16_s3")     # any size, 64 train, 16 test, seed 3
Nothing is downloaded: _split_generators draws the images. Data goes to `data_dir`, by default
$STYLEGAN_JAX_DATA_DIR or ~/.cache/stylegan_jax/tensorflow_datasets.
"""
import dataclasses
import os
import re

import numpy as np
from etils import epath
import tensorflow_datasets as tfds

from stylegan_jax.data import synthetic_portraits
from stylegan_jax.data.tf_cpu import tensorflow_on_cpu

DATA_DIR_ENV = "STYLEGAN_JAX_DATA_DIR"
DEFAULT_NUM_TRAIN, DEFAULT_NUM_TEST = 5000, 500
# Test examples use indices after the training ones, so the splits never share a portrait.
_CONFIG_NAME = re.compile(r"^(\d+)x(\d+)(?:_n(\d+))?(?:_t(\d+))?(?:_s(\d+))?$")
_PIXELS_PER_CHUNK = 1 << 20  # images drawn per numpy batch: ~1M pixels keeps arrays in cache-ish sizes


def default_data_dir():
    """Where TFDS data of this project lives unless a data_dir is given."""
    return os.environ.get(DATA_DIR_ENV) or os.path.expanduser("~/.cache/stylegan_jax/tensorflow_datasets")


@dataclasses.dataclass(eq=False)
class SyntheticPortraitsConfig(tfds.core.BuilderConfig):
    """Image size (H = 2 W), number of train/test examples and the seed they are drawn from."""
    height: int = 64
    width: int = 32
    num_train: int = DEFAULT_NUM_TRAIN
    num_test: int = DEFAULT_NUM_TEST
    seed: int = 0


def config_from_name(name):
    """Builds the config that a name like "64x32" or "128x64_n2000_t200_s1" describes."""
    match = _CONFIG_NAME.match(name)
    if not match:
        raise ValueError(f"bad synthetic_portraits config {name!r}: write HxW[_nTRAIN][_tTEST][_sSEED], "
                         "e.g. 64x32 or 128x64_n2000_t200_s1")
    height, width, num_train, num_test, seed = match.groups()
    synthetic_portraits.check_shape((int(height), int(width)))
    return SyntheticPortraitsConfig(
        name=name, height=int(height), width=int(width),
        num_train=DEFAULT_NUM_TRAIN if num_train is None else int(num_train),
        num_test=DEFAULT_NUM_TEST if num_test is None else int(num_test),
        seed=0 if seed is None else int(seed),
        description=f"{height}x{width} procedural anime-style portraits")


class SyntheticPortraits(tfds.core.GeneratorBasedBuilder):
    """Procedural anime-style portraits with attribute labels and face/eye/mouth boxes."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [config_from_name(name) for name in ("64x32", "128x64", "256x128", "512x256")]
    DEFAULT_CONFIG_NAME = "64x32"
    LABEL_SPEC = synthetic_portraits.LABEL_SPEC

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # TFDS's own lookup of this file needs the `importlib_resources` backport, which is not a
        # pinned dependency; the answer is simply this module's path.
        return epath.Path(__file__)

    def __init__(self, *, data_dir=None, config=None, **kwargs):
        # Names of sizes/counts/seeds not in BUILDER_CONFIGS become custom configs here, so every
        # variant can be named by a plain string (tfds.load("synthetic_portraits/64x32_n64")).
        if isinstance(config, str) and config.split(":")[0] not in self.builder_configs:
            config = config_from_name(config.split(":")[0])
        tensorflow_on_cpu()  # before TFDS touches TF: generation must never grab a GPU/TPU
        super().__init__(data_dir=data_dir or default_data_dir(), config=config, **kwargs)

    def _info(self):
        config = self.builder_config
        spec = synthetic_portraits.LABEL_SPEC
        return self.dataset_info_from_configs(
            description=__doc__.split("\n", 1)[0],
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(config.height, config.width, 3)),
                "label": tfds.features.Tensor(shape=(spec.dim,), dtype=np.float32),
                "key": tfds.features.Text(),
                **{name: tfds.features.ClassLabel(names=list(classes))
                   for name, classes in spec.attributes},
                "boxes": tfds.features.FeaturesDict(
                    {name: tfds.features.BBoxFeature() for name in synthetic_portraits.BOX_NAMES}),
            }),
            metadata=tfds.core.MetadataDict(label_spec=spec.to_json(), seed=config.seed),
        )

    def download_and_prepare(self, *, download_config=None, **kwargs):
        """Generates locally; never asks GCS for a pre-built copy (nothing downloads)."""
        download_config = download_config or tfds.download.DownloadConfig()
        download_config = dataclasses.replace(download_config, try_download_gcs=False)
        return super().download_and_prepare(download_config=download_config, **kwargs)

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the images are drawn
        num_train = self.builder_config.num_train
        return {
            "train": self._generate_examples(range(num_train)),
            "test": self._generate_examples(range(num_train, num_train + self.builder_config.num_test)),
        }

    def _generate_examples(self, indices):
        config = self.builder_config
        shape = (config.height, config.width)
        chunk = max(1, _PIXELS_PER_CHUNK // (config.height * config.width))
        for start in range(0, len(indices), chunk):
            batch_indices = indices[start:start + chunk]
            drawn = synthetic_portraits.generate(config.seed, batch_indices, shape)
            for i, index in enumerate(batch_indices):
                key = f"{config.seed}-{index:07d}"
                yield key, {
                    "image": drawn["image"][i],
                    "label": drawn["label"][i],
                    "key": key,
                    **drawn["attributes"][i],
                    "boxes": {name: tfds.features.BBox(*drawn["boxes"][i, b].tolist())
                              for b, name in enumerate(synthetic_portraits.BOX_NAMES)},
                }
