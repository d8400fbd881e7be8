"""Conditional training on the smoke config: the ACGAN losses in the train step, the projection
embedding learns, and a conditional checkpoint restores with its label spec."""
import functools

import jax
import ml_collections
import numpy as np
import pytest

from experiments import config_flags
from experiments.configs import _conditional
from stylegan_jax import conditional, layers, losses
from stylegan_jax.data import synthetic_portraits
from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.data.synthetic_portraits import LABEL_SPEC
from stylegan_jax.training import checkpoint, loop, parallel, state as state_lib, steps
from stylegan_jax.utils import cpu_compiler_options

pytestmark = pytest.mark.slow

GROUPS = conditional.attribute_groups(LABEL_SPEC)


def smoke(conditioning, total_kimg=0.016):
    config = config_flags.load_config("smoke", lock=False)
    _conditional.make_conditional(config, conditioning)
    config.schedule.total_kimg = total_kimg  # 2 steps of 8 at 8x4
    config.checkpoint.every_kimg = 0.008
    return config


@functools.lru_cache(maxsize=None)
def one_step(conditioning, fake_labels="data", mismatch_weight=0.0):
    """(G, D, config, old state, new state, metrics, batch) of one 8x4 train step on real labelled
    portraits, G asked for `fake_labels`, the matching-aware term at `mismatch_weight`."""
    config = smoke(conditioning)
    config.loss.fake_labels = fake_labels
    config.loss.mismatch_weight = mismatch_weight
    config = ml_collections.FrozenConfigDict(config)
    G, D = state_lib.build_networks(config, LABEL_SPEC.dim)
    fast = cpu_compiler_options(True)
    state = jax.jit(functools.partial(state_lib.init_train_state, G, D, config), compiler_options=fast)()
    drawn = synthetic_portraits.generate(0, range(8), (64, 32))
    batch = {"image": np.asarray(layers.downscale(drawn["image"].astype(np.float32) / 127.5 - 1.0, 8)),
             "label": drawn["label"]}
    step = jax.jit(functools.partial(steps.train_step, G=G, D=D, config=config, stage=0, apply_r1=True,
                                     label_groups=GROUPS), compiler_options=fast)
    new_state, metrics = step(state, batch, 1.0, 0.01, 0.01)
    one_step.steps[(conditioning, fake_labels, mismatch_weight)] = step
    return G, D, config, state, new_state, metrics, batch


one_step.steps = {}  # the compiled step of each call, for tests that take a second step


def test_acgan_step_adds_the_classification_loss_of_the_reals():
    _, D, _, state, new_state, metrics, batch = one_step("acgan")
    _, logits = D.apply({"params": state.d_params}, batch["image"], batch["label"], stage=0)
    expected = conditional.classification_loss(logits, batch["label"], GROUPS)  # weight 1 in the config
    assert float(metrics["d_acgan"]) == pytest.approx(float(expected), rel=1e-4)
    assert np.isfinite(float(metrics["g_acgan"])) and float(metrics["g_acgan"]) > 0
    moved = np.abs(np.asarray(new_state.d_params["8x4_classifier"]["kernel"])
                   - np.asarray(state.d_params["8x4_classifier"]["kernel"])).max()
    assert moved > 0  # the head is trained


def test_projection_step_trains_the_label_embedding():
    _, _, _, state, new_state, metrics, _ = one_step("projection")
    assert "d_acgan" not in metrics
    assert np.abs(np.asarray(new_state.d_params["8x4_projection"]) - np.asarray(state.d_params["8x4_projection"])).max() > 0


def step_fakes(G, config, state, batch, key_index, fake_labels):
    """The labels G is asked for and its fakes in train_step, redrawn from the step's keys
    (key_index 0: the fakes D trains on, 1: the fakes G trains on)."""
    step_key = jax.random.fold_in(state.rng, state.step)
    labels = conditional.fake_labels(fake_labels, jax.random.fold_in(step_key, 1), batch["label"], GROUPS)
    images, _ = steps.generate(G, state.g_params, jax.random.split(step_key)[key_index], labels,
                               len(labels), stage=0, alpha=1.0, mixing_prob=config.loss.style_mixing_prob)
    return labels, images


@pytest.mark.parametrize("fake_labels", ["data", "uniform"])
def test_projection_d_scores_reals_with_their_labels_and_fakes_with_the_requested(fake_labels):
    G, D, config, state, _, metrics, batch = one_step("projection", fake_labels)
    labels, fakes = step_fakes(G, config, state, batch, 0, fake_labels)
    assert (fake_labels == "data") == np.array_equal(labels, batch["label"])
    real_scores = D.apply({"params": state.d_params}, batch["image"], batch["label"], stage=0)
    fake_scores = D.apply({"params": state.d_params}, fakes, labels, stage=0)
    expected = losses.d_logistic_loss(real_scores, fake_scores)
    assert float(metrics["d_loss"]) == pytest.approx(float(expected), rel=1e-4)


def test_uniform_fake_labels_are_what_acgan_rewards_g_for():
    G, D, config, state, new_state, metrics, batch = one_step("acgan", "uniform")
    labels, images = step_fakes(G, config, state, batch, 1, "uniform")
    _, logits = D.apply({"params": new_state.d_params}, images, labels, stage=0)  # G meets the updated D
    assert not np.array_equal(labels, batch["label"])
    expected = conditional.classification_loss(logits, labels, GROUPS)
    assert float(metrics["g_acgan"]) == pytest.approx(float(expected), rel=1e-4)
    _, real_logits = D.apply({"params": state.d_params}, batch["image"], batch["label"], stage=0)
    expected_d = conditional.classification_loss(real_logits, batch["label"], GROUPS)  # D: real labels
    assert float(metrics["d_acgan"]) == pytest.approx(float(expected_d), rel=1e-4)


def test_matching_aware_term_scores_reals_with_wrong_labels_as_fakes():
    G, D, config, state, new_state, metrics, batch = one_step("projection", "data", 0.5)
    step_key = jax.random.fold_in(state.rng, state.step)
    wrong, changed = conditional.mismatched_labels(jax.random.fold_in(step_key, 2), batch["label"], GROUPS)
    assert np.all(changed)  # every synthetic portrait has all its attributes
    scores = np.asarray(D.apply({"params": state.d_params}, batch["image"], wrong, stage=0), np.float64)
    assert float(metrics["d_mismatch"]) == pytest.approx(0.5 * np.mean(np.log1p(np.exp(scores))), rel=1e-4)
    _, _, _, _, plain_state, plain_metrics, _ = one_step("projection")
    assert "d_mismatch" not in plain_metrics
    assert float(metrics["d_loss"]) == pytest.approx(float(plain_metrics["d_loss"]), rel=1e-6)  # same fakes
    # The term is in D's gradient. Adam's first step is +-lr per weight whatever the gradient's
    # size, so compare after a second step.
    second = [one_step.steps[("projection", "data", w)](s, batch, 1.0, 0.01, 0.01)[0]
              for w, s in ((0.5, new_state), (0.0, plain_state))]
    assert not np.allclose(*(np.asarray(s.d_params["8x4_projection"]) for s in second), rtol=1e-3, atol=0)


def test_the_step_checks_its_config_when_it_is_built():
    repl = parallel.replicated(parallel.make_mesh())

    def build(conditioning, label_size=LABEL_SPEC.dim, label_groups=GROUPS, **loss):
        config = smoke(conditioning)
        config.loss.update(loss)
        config = ml_collections.FrozenConfigDict(config)
        G, D = state_lib.build_networks(config, label_size)
        return steps.make_train_step(G, D, config, repl, label_groups)

    with pytest.raises(ValueError, match="mismatch_weight needs a D that scores labels"):
        build("acgan", mismatch_weight=1.0)
    for loss in (dict(mismatch_weight=0.5), dict(fake_labels="uniform")):
        with pytest.raises(ValueError, match="need the label layout: pass label_groups"):
            build("projection", label_groups=(), **loss)
    with pytest.raises(ValueError, match="unknown loss.fake_labels 'balanced'"):
        build("projection", fake_labels="balanced")
    with pytest.raises(ValueError, match="unknown loss.fake_labels 'balanced'"):  # unconditional too
        build("switch", label_size=0, label_groups=(), fake_labels="balanced")
    build("projection", mismatch_weight=0.5)  # with the label layout the same settings build


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
    assert config.loss.mismatch_weight == (1.0 if conditioning == "projection" else 0.0)
    assert base.loss.mismatch_weight == 0.0 and config.loss.fake_labels == "data"
    assert config.schedule == base.schedule and config.data.source == base.data.source
