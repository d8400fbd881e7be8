"""The exported TensorFlow SavedModel (jax2tf), loaded with tf.saved_model.load, computes the JAX
generator (the reference helpers.check_against_reference builds, as for ONNX)."""
import pytest
import tensorflow as tf

from stylegan_jax.export import ExportOptions, export_savedmodel
from helpers import EDITS, check_against_reference, make_inputs, tiny_generator


@pytest.mark.slow
def test_savedmodel_matches_jax(tmp_path):
    model = tiny_generator()
    options = ExportOptions(edit_layers=EDITS)
    out = str(tmp_path / "g_tf")
    manifest = export_savedmodel(*model, options, out, platforms=("cpu",))
    serve = tf.saved_model.load(out).signatures["serving_default"]

    def run(feeds):
        return serve(**{k: tf.constant(v) for k, v in feeds.items()})["images"].numpy()

    check_against_reference(run, model, options, manifest, make_inputs(manifest["inputs"], 3, seed=7))
    check_against_reference(run, model, options, manifest,
                            make_inputs(manifest["inputs"], 3, seed=8, edit_scale=0.0))
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_savedmodel(*model, options, out)
