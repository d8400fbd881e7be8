"""Data parallelism: 4 forced host devices give the same training result as 1 device, without
augmentation and with ADA (p adjusted within the run).

Runs in a subprocess because the device count is fixed when JAX starts
(XLA_FLAGS=--xla_force_host_platform_device_count=4). The subprocess trains the smoke networks
for a few steps on the same global batches with a 1-device mesh and a 4-device mesh and saves
both final states; this test compares them.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import functools, sys
import jax, ml_collections, numpy as np
from experiments import config_flags
from stylegan_jax.training import checkpoint, parallel, state as S, steps

assert jax.device_count() == 4, jax.devices()
config = config_flags.load_config("smoke", lock=False)
config.schedule.minibatch_dict.res8 = config.schedule.minibatch_dict.res16 = 16  # 4 per device
# With a large epsilon, Adam's update is a smooth function of the gradient. With eps = 1e-8 it
# is ~lr * sign(g), which turns roundoff-level gradients (e.g. of a bias that instance norm
# cancels) into +-lr coin flips and would hide the float-level agreement this test checks.
config.optimizer.eps = 1.0
if sys.argv[2] == "ada":  # p from 0.5, adjusted after steps 2 and 4
    config.augment.kind, config.augment.p, config.augment.interval = "ada", 0.5, 2
config = ml_collections.FrozenConfigDict(config)
G, D = S.build_networks(config)
rng = np.random.default_rng(0)
plan = [(0, 1.0), (0, 1.0), (1, 0.5), (1, 1.0)]  # (stage, alpha): growth and a fade-in included
batches = [{"image": rng.uniform(-1, 1, (16, 8 * 2**s, 4 * 2**s, 3)).astype(np.float32),
            "label": np.zeros((16, 0), np.float32)} for s, _ in plan]
out = {}
for n in (1, 4):
    mesh = parallel.make_mesh(jax.devices()[:n])
    repl = parallel.replicated(mesh)
    state = jax.jit(functools.partial(S.init_train_state, G, D, config), out_shardings=repl)()
    train_step = steps.make_train_step(G, D, config, repl)
    for i, ((stage, alpha), batch) in enumerate(zip(plan, batches)):
        batch = parallel.global_batch(batch, mesh)
        assert len(batch["image"].sharding.device_set) == n
        assert batch["image"].addressable_shards[0].data.shape[0] == 16 // n
        state, metrics = train_step(state, batch, alpha, 2e-3, 2e-3, stage=stage, apply_r1=True)
        for name, value in metrics.items():
            out[f"{n}:metrics/{i}/{name}"] = np.asarray(value)
    leaves = jax.tree_util.tree_flatten_with_path(parallel.to_host(state))[0]
    out.update({f"{n}:{checkpoint._path_str(p)}": x for p, x in leaves})
    out[f"{n}:devices"] = np.asarray(len(jax.tree.leaves(state)[0].sharding.device_set))
np.savez(sys.argv[1], **out)
"""


@pytest.mark.parametrize("augment, num_metrics", [("none", 7), ("ada", 8)])
def test_four_devices_match_one_device(tmp_path, augment, num_metrics):
    result = str(tmp_path / "states.npz")
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=4 "
                         "--xla_backend_optimization_level=0",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", SCRIPT, result, augment], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    states = np.load(result)
    assert int(states["1:devices"]) == 1 and int(states["4:devices"]) == 4
    names = [k[2:] for k in states.files if k.startswith("1:") and k != "1:devices"
             and "opt_state" not in k]  # Adam moments hold raw roundoff-level gradients too
    # d_loss, r1_penalty, real_score, fake_score, real_sign, g_loss, finite (and augment_p with
    # ADA), for each of 4 steps
    assert len([n for n in names if n.startswith("metrics/")]) == 4 * num_metrics
    assert len([n for n in names if n.startswith("d_params/")]) > 10
    for name in names:
        one, four = states["1:" + name], states["4:" + name]
        # Only the summation order of the batch reductions differs between the two meshes.
        np.testing.assert_allclose(four, one, rtol=1e-4, atol=1e-5, err_msg=name)
    assert int(states["4:step"]) == 4
    if augment == "ada":
        assert float(states["1:augment_p"]) != 0.5   # p moved, the same way on both meshes
