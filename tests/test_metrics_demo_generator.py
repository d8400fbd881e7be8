"""SWD on the bundled demo generator: trained weights score far closer to the data than noise.

The generator in stylegan_jax/assets was trained by this project's own demo config (see
demo_generator.json beside it); the same architecture with freshly initialised weights and plain
noise images are the references it must beat.
"""
import jax
import numpy as np
import pytest

from stylegan_jax.data.pipeline import make_pipeline
from stylegan_jax.explore import Explorer, load_generator, random_bundle
from stylegan_jax.explore.model import DEMO_GENERATOR, generator_config
from stylegan_jax.metrics.swd import sliced_wasserstein_distance

NUM_IMAGES = 256


@pytest.fixture(scope="module")
def reals():
    batches = make_pipeline("synthetic_portraits", resolution=(64, 32), batch_size=NUM_IMAGES,
                            split="test", shuffle=False, repeat=False)
    return next(iter(batches))["image"]


def _samples(bundle):
    explorer = Explorer(bundle, noise_mode="random", fast_compile=True)
    w = explorer.w_from_seeds(range(NUM_IMAGES), psi=1.0)
    return np.concatenate([explorer.synthesize(w[i:i + 64], noise_seed=i).images
                           for i in range(0, NUM_IMAGES, 64)])


@pytest.mark.slow
def test_swd_ranks_the_trained_demo_generator_above_untrained_weights_and_noise(reals):
    trained = load_generator(DEMO_GENERATOR)
    config = generator_config(trained.module)
    config["base_shape"] = tuple(config["base_shape"])
    config.pop("dtype")
    untrained = random_bundle(seed=3, **config)
    noise = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), reals.shape, minval=-1, maxval=1))
    scores = {name: sliced_wasserstein_distance(reals, images, seed=0)["avg"]
              for name, images in [("trained", _samples(trained)), ("untrained", _samples(untrained)),
                                   ("noise", noise)]}
    assert scores["trained"] < 0.5 * scores["untrained"], scores
    assert scores["trained"] < 0.5 * scores["noise"], scores


def test_explore_command_opens_the_bundled_generator_by_default():
    """`python -m experiments.explore` with no model flag serves the bundled demo generator."""
    import json
    import os
    import re
    import subprocess
    import sys
    import time
    import urllib.request
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen([sys.executable, "-m", "experiments.explore", "--port=0"], cwd=repo,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + 300
        line = ""
        while time.time() < deadline and "explorer at" not in line:
            line = process.stdout.readline()
            assert line or process.poll() is None, "the explorer exited"
        url = re.search(r"(http://\S+)", line).group(1)
        with urllib.request.urlopen(url + "api/info", timeout=60) as reply:
            info = json.load(reply)
        assert info["image_shape"] == [64, 32]
        # The page is told the model's file name only, never its absolute path.
        assert info["provenance"]["source"] == os.path.basename(DEMO_GENERATOR)
        assert info["provenance"]["stage"] == 3
    finally:
        process.terminate()
        process.wait(30)
