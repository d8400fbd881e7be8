"""The training benchmark's FLOP counting (XLA cost analysis) against the analytic count."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from benchmarks import bench_train
from stylegan_jax.training import state as state_lib

pytestmark = pytest.mark.slow


def test_cost_analysis_counts_a_3x3_convolution_and_a_matmul_exactly():
    n, h, w, c_in, c_out = 2, 8, 4, 16, 32
    x = jnp.ones((n, h, w, c_in), jnp.float32)
    k = jnp.ones((3, 3, c_in, c_out), jnp.float32)
    conv = jax.jit(lambda x, k: jax.lax.conv_general_dilated(
        x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
    flops = bench_train._flops(conv.lower(x, k))  # pylint: disable=protected-access
    # One multiply-add per channel pair and per tap that lands inside the image: XLA does not
    # count the zero padding, so a row of w outputs has 3w - 2 taps of a 3-wide kernel.
    assert flops == 2 * n * c_in * c_out * (3 * h - 2) * (3 * w - 2)
    a, b = jnp.ones((64, 48)), jnp.ones((48, 80))
    assert bench_train._flops(jax.jit(jnp.matmul).lower(a, b)) == 2 * 64 * 48 * 80  # pylint: disable=protected-access
    peak = bench_train.matmul_peak_flops(256, repeats=2)
    assert np.isfinite(peak) and peak > 0


def test_case_names_map_to_the_paper_network_at_the_requested_stage():
    config, stage = bench_train.case_config("paper@64x64", "float32")
    assert stage == 4 and config.model.num_stages == 5 and config.generator.fmap_max == 512
    config, stage = bench_train.case_config("demo", "float32")
    assert stage == config.model.num_stages - 1 and config.augment.kind == "none"
    config, _ = bench_train.case_config("demo_ada", "float32")
    assert config.augment.kind == "ada" and config.augment.p == 0.5
    for bad in ("paper@48x48", "resnet"):
        try:
            bench_train.case_config(bad, "float32")
        except ValueError as e:
            assert bad.split("@")[-1].split("x")[0] in str(e) or "unknown case" in str(e)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_count_only_counts_the_step_without_compiling_and_scales_with_the_batch(capsys):
    # The step's convolutions dominate, and they scale with the batch: twice the images, close to
    # twice the FLOPs (the optimizer update and the mapping's weights do not scale, hence ~).
    bench_train.benchmark(["demo"], batch=2, count_only=True)
    bench_train.benchmark(["demo"], batch=4, count_only=True)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    small, large = (r["results"][0]["gflop_per_step"] for r in lines)
    assert np.isfinite(small) and small > 0
    assert 1.9 < large / small <= 2.0


def test_the_matching_aware_term_costs_one_more_d_pass_on_the_reals(capsys):
    # demo_projection's step scores the reals a second time (with wrong labels) and back-propagates
    # through it: the extra FLOPs are one D forward + backward on the batch, which pass_flops
    # counts for the unconditional demo's D (the same trunk; the projection adds one small matmul).
    bench_train.benchmark(["demo_projection", "demo_projection_plain", "demo_acgan"], batch=4, count_only=True)
    results = json.loads(capsys.readouterr().out.splitlines()[-1])["results"]
    matching, plain, acgan = (r["gflop_per_step"] for r in results)
    config, stage = bench_train.case_config("demo", "float32")
    frozen = ml_collections.FrozenConfigDict(config)
    G, D = state_lib.build_networks(frozen)
    state = jax.eval_shape(lambda: state_lib.init_train_state(G, D, frozen))
    state = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), state)
    batch = {"image": jnp.zeros((4, 64, 32, 3), jnp.float32)}
    d_pass = bench_train.pass_flops(G, D, state, batch, stage, frozen)["D fwd+bwd"] / 1e9
    assert 0.9 < (matching - plain) / d_pass < 1.25
    assert abs(acgan - plain) / plain < 0.02  # the same step but for the heads


# Every benchmark imported into one process (as the test suite does), then bench_train run as the
# command: their flags must not clash, and bad input must end in a one-line error.
ALL_BENCHMARKS_THEN_BENCH_TRAIN = """
import runpy, sys
import benchmarks.bench_conditional, benchmarks.bench_edits, benchmarks.bench_explorer, benchmarks.bench_export
import benchmarks.bench_startup
sys.argv = ["bench_train"] + sys.argv[1:]
runpy.run_module("benchmarks.bench_train", run_name="__main__")
"""


def test_the_command_parses_its_flags_beside_the_other_benchmarks():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def command(*flags):
        return subprocess.run([sys.executable, "-c", ALL_BENCHMARKS_THEN_BENCH_TRAIN, *flags], cwd=repo,
                              env=dict(os.environ, PYTHONPATH=repo, JAX_PLATFORMS="cpu"), capture_output=True,
                              text=True, timeout=300, check=False)
    unknown_case = command("--cases=resnet", "--count_only")
    assert unknown_case.returncode == 2, unknown_case.stderr[-2000:]
    assert unknown_case.stderr.strip().splitlines()[-1].startswith("error: unknown case 'resnet': use 'demo'")
    assert unknown_case.stdout == ""
    bad_dtype = command("--dtype=float16")
    assert bad_dtype.returncode == 1
    assert "flag --dtype=float16: value should be one of <float32|bfloat16>" in bad_dtype.stderr
