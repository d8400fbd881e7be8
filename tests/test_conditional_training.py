"""Conditional training on the smoke config: the ACGAN losses in the train step, the projection
embedding learns, and a conditional checkpoint restores with its label spec."""
import functools

import jax
import ml_collections
import numpy as np
import pytest

from experiments import config_flags
from experiments.configs import _conditional
from stylegan_jax import conditional, layers
from stylegan_jax.data import synthetic_portraits
from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.data.synthetic_portraits import LABEL_SPEC
from stylegan_jax.training import checkpoint, loop, state as state_lib, steps

GROUPS = conditional.attribute_groups(LABEL_SPEC)


def smoke(conditioning, total_kimg=0.016):
    config = config_flags.load_config("smoke", lock=False)
    _conditional.make_conditional(config, conditioning)
    config.schedule.total_kimg = total_kimg  # 2 steps of 8 at 8x4
    config.checkpoint.every_kimg = 0.008
    return config


@functools.lru_cache(maxsize=None)
def one_step(conditioning):
    """(D, old state, new state, metrics, batch) of one 8x4 train step on real labelled portraits."""
    config = ml_collections.FrozenConfigDict(smoke(conditioning))
    G, D = state_lib.build_networks(config, LABEL_SPEC.dim)
    fast = steps.cpu_compiler_options(True)
    state = jax.jit(functools.partial(state_lib.init_train_state, G, D, config), compiler_options=fast)()
    drawn = synthetic_portraits.generate(0, range(8), (64, 32))
    batch = {"image": np.asarray(layers.downscale(drawn["image"].astype(np.float32) / 127.5 - 1.0, 8)),
             "label": drawn["label"]}
    step = jax.jit(functools.partial(steps.train_step, G=G, D=D, config=config, stage=0, apply_r1=True,
                                     label_groups=GROUPS), compiler_options=fast)
    new_state, metrics = step(state, batch, 1.0, 0.01, 0.01)
    return D, state, new_state, metrics, batch


def test_acgan_step_adds_the_classification_loss_of_the_reals():
    D, state, new_state, metrics, batch = one_step("acgan")
    _, logits = D.apply({"params": state.d_params}, batch["image"], batch["label"], stage=0)
    expected = conditional.classification_loss(logits, batch["label"], GROUPS)  # weight 1 in the config
    assert float(metrics["d_acgan"]) == pytest.approx(float(expected), rel=1e-4)
    assert np.isfinite(float(metrics["g_acgan"])) and float(metrics["g_acgan"]) > 0
    moved = np.abs(np.asarray(new_state.d_params["8x4_classifier"]["kernel"])
                   - np.asarray(state.d_params["8x4_classifier"]["kernel"])).max()
    assert moved > 0  # the head is trained


def test_projection_step_trains_the_label_embedding():
    _, state, new_state, metrics, _ = one_step("projection")
    assert "d_acgan" not in metrics
    assert np.abs(np.asarray(new_state.d_params["8x4_projection"]) - np.asarray(state.d_params["8x4_projection"])).max() > 0


def test_conditional_checkpoint_restores_with_its_label_spec(tmp_path):
    workdir = str(tmp_path / "run")
    config = smoke("acgan")
    loop.train_and_evaluate(config, workdir)
    ckpt = checkpoint.Checkpointer(str(tmp_path / "run" / "checkpoints"), keep=2, read_only=True)
    meta = ckpt.read_meta()
    spec = LabelSpec.from_json(meta["label_spec"])
    assert spec == LABEL_SPEC and meta["label_size"] == LABEL_SPEC.dim
    G, D = state_lib.build_networks(ml_collections.ConfigDict(meta["config"]), spec.dim)
    state, _ = ckpt.restore(jax.eval_shape(lambda: state_lib.init_train_state(G, D, config)))
    assert state.d_params["8x4_classifier"]["kernel"].shape[1] == spec.dim
    assert state.g_ema_params["mapping_network"]["label_embedding"].shape[0] == spec.dim


@pytest.mark.parametrize("name, conditioning", [("demo_acgan", "acgan"), ("demo_projection", "projection"),
                                                ("rect_anime_acgan:/data/dan", "acgan"),
                                                ("rect_anime_projection:/data/dan", "projection")])
def test_conditional_configs(name, conditioning):
    config = config_flags.load_config(name)
    base = config_flags.load_config(name.split("_")[0] if name.startswith("demo") else "rect_anime:/data/dan")
    assert config.data.use_labels and config.discriminator.conditioning == conditioning
    assert config.schedule == base.schedule and config.data.source == base.data.source
