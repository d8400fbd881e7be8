"""Input data: the embedded synthetic portraits (a TFDS dataset) and one pipeline for every source."""
from stylegan_jax.data import portraits_tfds  # noqa: F401  (registers "synthetic_portraits")
from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.data.pipeline import dataset_info, make_pipeline
from stylegan_jax.data.prepared import PreparedWriter, prepared_tf_dataset, read_prepared_info

__all__ = ["LabelSpec", "PreparedWriter", "dataset_info", "make_pipeline", "prepared_tf_dataset",
           "read_prepared_info"]
