"""The model side of the package imports without TensorFlow.

TensorFlow (through tensorflow-datasets) is used for input only. The networks, the train step, the
explorer and the export must import without it, so that they run where JAX is installed but
TensorFlow is not (an accelerator machine, a serving process). Checked in a fresh interpreter in
which importing tensorflow or tensorflow_datasets raises.
"""
import subprocess
import sys

MODEL_SIDE = ("stylegan_jax.networks", "stylegan_jax.training.steps", "stylegan_jax.training.state",
              "stylegan_jax.conditional", "stylegan_jax.explore", "experiments.export",
              "benchmarks.bench_train")


def _import_without_tensorflow(modules):
    code = ("import sys\n"
            "sys.modules['tensorflow'] = None\n"  # makes `import tensorflow` raise ImportError
            "sys.modules['tensorflow_datasets'] = None\n"
            + "".join(f"import {m}\n" for m in modules))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)


def test_model_side_imports_without_tensorflow():
    result = _import_without_tensorflow(MODEL_SIDE)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_input_pipeline_does_need_tensorflow():
    # The other side of the check: the blocking works, so the test above could fail.
    result = _import_without_tensorflow(["stylegan_jax.data.pipeline"])
    assert result.returncode != 0
    assert "tensorflow" in result.stderr
