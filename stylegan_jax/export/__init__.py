"""Export a trained generator for game engines and other runtimes (ONNX, TensorFlow SavedModel)."""
from stylegan_jax.export.exporters import (FORMATS, build_manifest, export, export_onnx,
                                           export_savedmodel, manifest_path, onnx_model,
                                           parameter_bytes)
from stylegan_jax.export.generator_fn import ExportOptions, input_specs, make_export_function
