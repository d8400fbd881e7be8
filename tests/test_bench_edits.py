"""The edits benchmark's choice of the two labelled examples (benchmarks/bench_edits.py)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import bench_edits
from stylegan_jax.explore import Explorer, random_bundle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def explorer():
    return Explorer(random_bundle(seed=1), fast_compile=True)


def brightness_judge(threshold):
    """A stand-in judge: 'bright' is present when an image's mean exceeds threshold."""
    def judge(images):
        return {"bright": (np.asarray(images).mean(axis=(1, 2, 3)) > threshold).astype(np.float32)}
    return judge


def test_first_examples_are_the_first_seed_judged_each_way(explorer):
    means = explorer.synthesize(explorer.w_from_seeds(range(25))).images.mean(axis=(1, 2, 3))
    judge = brightness_judge(float(np.median(means)))
    examples = bench_edits.first_examples(explorer, judge, "bright")
    bright = means > np.median(means)
    assert examples == {True: int(np.argmax(bright)), False: int(np.argmin(bright))}


def test_examples_the_judge_disagrees_with_are_refused_by_name(explorer):
    always = brightness_judge(-2.0)  # every image is "bright": no seed can serve as WITHOUT
    with pytest.raises(ValueError, match="examples 3,4: the judge must see bright"):
        bench_edits.find_recipe(explorer, always, "bright", examples=(3, 4))
    with pytest.raises(RuntimeError, match="never saw both values"):
        bench_edits.first_examples(explorer, always, "bright")


def test_default_edit_layers_stop_at_the_first_layer_of_the_output_resolution(explorer):
    # Synthesis runs two layers per resolution (conv0_up then conv1; the base: const, conv).
    height = explorer.image_shape[0]
    names = [l.name for l in explorer.layers]
    assert names[-2:] == [f"{height}x{height // 2}_conv0_up", f"{height}x{height // 2}_conv1"]
    assert bench_edits.default_edit_layers(explorer) == names[1:-1]


def test_the_command_parses_its_flags_and_reports_bad_input_in_one_line(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def command(*flags):
        return subprocess.run([sys.executable, "-m", "benchmarks.bench_edits", *flags], cwd=repo,
                              env=dict(os.environ, PYTHONPATH=repo, JAX_PLATFORMS="cpu"), capture_output=True,
                              text=True, timeout=300, check=False)
    missing = command(f"--model={tmp_path / 'none.npz'}", "--attributes=mouth_open", "--examples=3,4",
                      "--first-seed=5", "--locator-top-k=1", "--edit-layers=8x4_conv1", "--nocontrast",
                      f"--out={tmp_path / 'out'}")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'none.npz'} does not exist")
    one_seed = command(f"--model={tmp_path / 'none.npz'}", "--examples=3")
    assert one_seed.returncode == 1 and "--examples takes two seeds, WITH,WITHOUT" in one_seed.stderr
    assert list(tmp_path.iterdir()) == []
