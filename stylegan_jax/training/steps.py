"""The pure training step: one discriminator update, one generator update, the averages.

`train_step` follows the official StyleGAN loop:

1. `d_step`: D minimizes the logistic loss of the reals against G's fakes, plus R1 on the reals
   (lazy: every loss.r1_interval steps, that many times heavier; weighted per stage as the
   official run weights it, `r1_gamma`), plus the conditional terms of its config: the ACGAN
   classification of the reals (`conditional.acgan_d_loss`) and the matching-aware term
   (`mismatch_term`).
2. `g_step`: G minimizes the non-saturating loss against the updated D, on fakes drawn with
   style-mixing regularization (`generate`), plus the ACGAN term (`conditional.acgan_g_loss`).
3. `update_averages`: the generator average, and the tracked average w moved toward the w's of
   both the D step's and the G step's fakes (the official G updates it whenever it maps latents
   in training, once in each step).
4. `augment.next_p`: ADA's probability p and its statistics (kind "ada"; "fixed" keeps p).

Every image D sees (the reals, the D step's fakes, the reals in the matching-aware term, the G
step's fakes) goes through config.augment (`discriminator_view`). R1 is the gradient of D's
scores of the reals, from the same forward pass (and augmentation) as their loss, with respect
to the reals before augmentation: as in the official ADA loss when R1 is applied in the same
step as the D loss, and one backward pass through D on the reals instead of two.

Besides the losses and scores, the step's metrics hold `finite`: whether all of them are finite,
one boolean the loop can fetch cheaply to stop a diverged run.

The random streams are part of the contract (a step depends only on the state, the batch and the
schedule, and tests redraw a step's fakes and labels from them):

    step_key = fold_in(state.rng, state.step)
    k_d, k_g = split(step_key)   the fakes of the D step and of the G step
    fold_in(step_key, 1)         the labels G is asked for (`requested_labels`)
    fold_in(step_key, 2)         the wrong labels of the matching-aware term (`wrong_labels`)
    fold_in(step_key, 3 .. 7)    the augmentations of D's inputs (AUGMENT_STREAMS): the reals of
                                 the D loss and R1 (3), the D step's fakes (4), the G step's
                                 fakes (6), the reals with wrong labels (7); 5 is unused

`make_train_step` checks the config once (`check_step_config`) and jits `train_step`.
"""
import functools
from typing import Callable, Dict

import jax
import jax.numpy as jnp

from stylegan_jax import augment as augment_lib
from stylegan_jax import conditional, layers, losses
from stylegan_jax.networks import Discriminator, Generator, style_mixing, update_w_avg
from stylegan_jax.training.state import TrainState, frozen_d_layers, make_optimizer, optimizer_update
from stylegan_jax.utils import cpu_compiler_options

R1_RESOLUTIONS = ("full", "stage")  # loss.r1_resolution: see r1_gamma


# fold_in(step_key, k) of each augmentation of D's inputs (5 is unused: R1 sees the reals as
# their loss does, from the same forward pass).
AUGMENT_STREAMS = {"reals": 3, "fakes": 4, "g_fakes": 6, "mismatch": 7}


def no_augment(images, stream: str):
    """D sees the images as they are."""
    del stream
    return images


def discriminator_view(augment_cfg, p, step_key) -> Callable:
    """view(images, stream): the images as D sees them under config.augment at probability p,
    each stream (AUGMENT_STREAMS) with its own randomness from the step key."""
    if augment_cfg.kind == "none":
        return no_augment
    return lambda images, stream: augment_lib.for_discriminator(
        augment_cfg, p, jax.random.fold_in(step_key, AUGMENT_STREAMS[stream]), images)


def fade_reals(images, alpha):
    """Blend the reals toward their 2x-coarser version while a stage fades in (official
    process_reals 'FadeLOD'), so D sees real images as blurred as the fading-in fakes."""
    return layers.lerp(images, layers.upscale(layers.downscale(images)), 1.0 - alpha)


def r1_gamma(loss_cfg, stage: int, num_stages: int) -> float:
    """The weight R1 has at `stage`, lazy-R1 factor included (loss.r1_interval).

    The official run feeds D the reals nearest-upscaled to the final resolution, and D
    box-downscales them back to the stage's resolution: its R1 gradient is taken with respect to
    the full-resolution image. Each pixel of a stage image is the mean of 4^k full-resolution
    pixels (k = num_stages - 1 - stage doublings), so that gradient is the stage gradient spread
    over them, 1/4^k each, and its squared norm is the stage one divided by 4^k.
    loss.r1_resolution "full" (the default) weights the penalty on the stage images by that
    1/4^k, which is exactly the official penalty; "stage" takes it at the stage's resolution with
    the same gamma at every stage, 4^k times stronger than the official one below the last stage.
    """
    if loss_cfg.r1_resolution not in R1_RESOLUTIONS:
        raise ValueError(f"loss.r1_resolution must be one of {', '.join(R1_RESOLUTIONS)}, "
                         f"not {loss_cfg.r1_resolution!r}")
    doublings = num_stages - 1 - stage if loss_cfg.r1_resolution == "full" else 0
    return loss_cfg.r1_gamma * loss_cfg.r1_interval / 4.0**doublings


def ema_beta(batch_size: int, half_life_kimg: float) -> float:
    """Per-step decay of the generator average for a given half-life in thousands of images."""
    return 0.5 ** (batch_size / (half_life_kimg * 1000.0)) if half_life_kimg > 0 else 0.0


def is_acgan(D: Discriminator) -> bool:
    """Whether D also classifies its input: it returns (scores, class logits)."""
    return D.label_size > 0 and D.conditioning == "acgan"


def is_matching_aware(D: Discriminator, loss_cfg) -> bool:
    """Whether D also learns that reals with a wrong label are fakes (loss.mismatch_weight > 0)."""
    return D.label_size > 0 and loss_cfg.mismatch_weight > 0


def check_step_config(G: Generator, D: Discriminator, config, label_groups: conditional.Groups = ()):
    """Raises a one-line ValueError if the step cannot train G and D with config.loss and
    config.augment."""
    augment_lib.check_config(config.augment)
    loss_cfg = config.loss
    frozen_d_layers(D, config.get("freeze_d_blocks", 0))  # a ConfigError when out of range
    conditional.check_fake_labels(loss_cfg.fake_labels)  # also when unconditional: no silent typo
    r1_gamma(loss_cfg, 0, G.num_stages)  # an unknown loss.r1_resolution fails here, not in a trace
    mismatch = is_matching_aware(D, loss_cfg)
    if mismatch and D.conditioning not in ("projection", "switch"):
        raise ValueError(f"loss.mismatch_weight needs a D that scores labels (conditioning projection "
                         f"or switch), not {D.conditioning!r}: set it to 0")
    if G.label_size and not label_groups and (mismatch or loss_cfg.fake_labels != "data"):
        raise ValueError("uniform fake labels and the matching-aware term need the label layout: "
                         "pass label_groups=conditional.attribute_groups(spec)")


def generate(G: Generator, g_params, rng, labels, batch_size: int, *, stage: int, alpha,
             mixing_prob: float):
    """Training-time fakes: z -> w (two latents, style-mixed) -> images. Returns (images, w)."""
    k_z, k_mix, k_noise = jax.random.split(rng, 3)
    z = jax.random.normal(k_z, (2 * batch_size, G.latent_size), jnp.float32)
    labels2 = None if labels is None else jnp.concatenate([labels, labels])
    w_both = G.apply({"params": g_params}, z, labels2, method=Generator.mapping)
    w, w2 = w_both[:batch_size], w_both[batch_size:]
    w_mixed = style_mixing(k_mix, w, w2, mixing_prob, 2 * (stage + 1)) if mixing_prob > 0 else w
    images = G.apply({"params": g_params}, w_mixed, stage=stage, alpha=alpha,
                     method=Generator.synthesis, rngs={"noise": k_noise})
    return images, w


def critic_outputs(D: Discriminator, d_params, images, labels, *, stage: int, alpha):
    """(scores [N], ACGAN class logits [N, label_size] or None) of D on images with labels."""
    out = D.apply({"params": d_params}, images, labels, stage=stage, alpha=alpha)
    return out if is_acgan(D) else (out, None)


def requested_labels(loss_cfg, rng, real_labels, label_groups: conditional.Groups):
    """The labels G is asked for (loss.fake_labels: the real batch's or uniform), None if
    unconditional."""
    if real_labels is None:
        return None
    return conditional.fake_labels(loss_cfg.fake_labels, rng, real_labels, label_groups)


def wrong_labels(D: Discriminator, loss_cfg, rng, real_labels, label_groups: conditional.Groups):
    """(wrong labels, changed) of the reals for the matching-aware term
    (conditional.mismatched_labels), None when D is not matching-aware."""
    if not is_matching_aware(D, loss_cfg):
        return None
    return conditional.mismatched_labels(rng, real_labels, label_groups)


def mismatch_term(critic, d_params, reals, wrong, weight: float):
    """Matching-aware D: the reals scored with their wrong labels count as fakes."""
    labels, changed = wrong
    return conditional.mismatch_loss(critic(d_params, reals, labels)[0], changed, weight)


def d_step(state: TrainState, lr, tx, critic, reals, real_labels, fakes, fake_labels, wrong, *,
           loss_cfg, gamma: float, label_groups: conditional.Groups, frozen=(),
           augment=no_augment):
    """D minimizes the logistic loss of reals against fakes, + R1 on the reals weighted by gamma
    (0: not this step), + the matching-aware term (when `wrong` labels are given), + ACGAN's
    classification of the reals (when D classifies); the layers named in `frozen` are not
    updated. D sees its inputs through augment(images, stream) (`discriminator_view`). Returns
    (d_params, d_opt_state, metrics); metrics["real_sign"] is E[sign(D(real))], ADA's
    overfitting measure."""

    def loss_fn(d_params):
        def real_critic(x):
            return critic(d_params, augment(x, "reals"), real_labels)

        if gamma > 0:  # R1 from the same forward pass of D on the (augmented) reals
            real_scores, real_logits, norms = losses.scores_and_gradient_norms(real_critic, reals)
            r1 = losses.r1_from_norms(norms, gamma)
        else:
            (real_scores, real_logits), r1 = real_critic(reals), jnp.zeros((), jnp.float32)
        fake_scores, _ = critic(d_params, augment(fakes, "fakes"), fake_labels)
        loss = losses.d_logistic_loss(real_scores, fake_scores)
        metrics = dict(d_loss=loss, r1_penalty=r1, real_score=jnp.mean(real_scores),
                       fake_score=jnp.mean(fake_scores), real_sign=jnp.mean(jnp.sign(real_scores)))
        if wrong is not None:  # matching-aware D
            metrics["d_mismatch"] = mismatch_term(critic, d_params, augment(reals, "mismatch"),
                                                  wrong, loss_cfg.mismatch_weight)
            loss = loss + metrics["d_mismatch"]
        if real_logits is not None:  # ACGAN: D also classifies the reals
            metrics["d_acgan"] = conditional.acgan_d_loss(real_logits, real_labels, label_groups,
                                                          loss_cfg.acgan_d_weight, loss_cfg.acgan_loss)
            loss = loss + metrics["d_acgan"]
        return loss + r1, metrics

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.d_params)
    return (*optimizer_update(tx, state.d_params, state.d_opt_state, grads, lr, frozen), metrics)


def g_step(state: TrainState, lr, tx, critic, d_params, make_fakes, rng, labels, *, loss_cfg,
           label_groups: conditional.Groups, augment=no_augment):
    """G minimizes the non-saturating loss of its fakes `make_fakes(g_params, rng)` against D at
    d_params (D seeing them through augment(images, "g_fakes")), + ACGAN's term for D
    recognizing the requested labels (when D classifies).
    Returns (g_params, g_opt_state, the fakes' w, metrics)."""

    def loss_fn(g_params):
        images, w = make_fakes(g_params, rng)
        scores, logits = critic(d_params, augment(images, "g_fakes"), labels)
        metrics = dict(g_loss=losses.g_nonsaturating_loss(scores))
        if logits is not None:  # ACGAN: D's classifier should recognize the requested labels
            metrics["g_acgan"] = conditional.acgan_g_loss(logits, labels, label_groups,
                                                          loss_cfg.acgan_g_weight, loss_cfg.acgan_loss)
        return sum(metrics.values()), (w, metrics)

    (_, (w, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
    return (*optimizer_update(tx, state.g_params, state.g_opt_state, grads, lr), w, metrics)


def update_averages(state: TrainState, g_params, ws, batch_size: int, loss_cfg):
    """(g_ema_params, w_avg): the generator average (half-life loss.g_ema_half_life_kimg) moved
    toward g_params, and the tracked w (decay loss.w_avg_beta) toward each of `ws` in turn (the
    w's of this step's D-step fakes, then of its G-step fakes)."""
    beta = ema_beta(batch_size, loss_cfg.g_ema_half_life_kimg)
    g_ema_params = jax.tree.map(lambda avg, p: layers.lerp(p, avg, beta), state.g_ema_params,
                                g_params)
    w_avg = state.w_avg
    for w in ws:
        w_avg = update_w_avg(w_avg, jax.lax.stop_gradient(w), loss_cfg.w_avg_beta)
    return g_ema_params, w_avg


def train_step(state: TrainState, batch: Dict[str, jax.Array], alpha, g_lr, d_lr, *,
               G: Generator, D: Discriminator, config, stage: int, apply_r1: bool,
               label_groups: conditional.Groups = ()):
    """One D step and one G step on the global batch, then the averages. Returns (new state,
    metrics): the losses and scores, and `finite`, whether all of those are finite.

    stage and apply_r1 are static; alpha and the learning rates are traced scalars. label_groups
    (conditional.attribute_groups of the data's LabelSpec) lays out the labels; the config must
    pass check_step_config (make_train_step checks it).
    """
    loss_cfg = config.loss
    tx = make_optimizer(config)
    batch_size = batch["image"].shape[0]
    step_key = jax.random.fold_in(state.rng, state.step)
    k_d, k_g = jax.random.split(step_key)
    k_labels, k_wrong = jax.random.fold_in(step_key, 1), jax.random.fold_in(step_key, 2)
    real_labels = batch["label"] if G.label_size else None
    labels = requested_labels(loss_cfg, k_labels, real_labels, label_groups)
    wrong = wrong_labels(D, loss_cfg, k_wrong, real_labels, label_groups)
    critic = functools.partial(critic_outputs, D, stage=stage, alpha=alpha)
    p = augment_lib.step_p(config.augment, state.augment_p)
    view = discriminator_view(config.augment, p, step_key)
    make_fakes = functools.partial(generate, G, labels=labels, batch_size=batch_size, stage=stage,
                                 alpha=alpha, mixing_prob=loss_cfg.style_mixing_prob)

    fakes, w_d = jax.lax.stop_gradient(make_fakes(state.g_params, k_d))
    reals = fade_reals(batch["image"].astype(jnp.float32), alpha)
    d_params, d_opt_state, d_metrics = d_step(
        state, d_lr, tx, critic, reals, real_labels, fakes, labels, wrong, loss_cfg=loss_cfg,
        gamma=r1_gamma(loss_cfg, stage, G.num_stages) if apply_r1 else 0.0,
        label_groups=label_groups, frozen=frozen_d_layers(D, config.get("freeze_d_blocks", 0)),
        augment=view)
    g_params, g_opt_state, w, g_metrics = g_step(
        state, g_lr, tx, critic, d_params, make_fakes, k_g, labels, loss_cfg=loss_cfg,
        label_groups=label_groups, augment=view)
    g_ema_params, w_avg = update_averages(state, g_params, (w_d, w), batch_size, loss_cfg)
    augment_p, ada_stats = augment_lib.next_p(config.augment, state.augment_p, state.ada_stats,
                                              d_metrics["real_sign"], batch_size, state.step)
    new_state = state.replace(
        step=state.step + 1, nimg=state.nimg + batch_size, g_params=g_params, d_params=d_params,
        g_ema_params=g_ema_params, g_opt_state=g_opt_state, d_opt_state=d_opt_state, w_avg=w_avg,
        augment_p=augment_p, ada_stats=ada_stats)
    metrics = {**d_metrics, **g_metrics}
    if config.augment.kind != "none":
        metrics["augment_p"] = p  # the p this step's augmentations used
    return new_state, dict(metrics, finite=jnp.all(jnp.isfinite(jnp.stack(list(metrics.values())))))


@functools.lru_cache(maxsize=None)
def make_train_step(G: Generator, D: Discriminator, config, state_sharding,
                    label_groups: conditional.Groups = ()) -> Callable:
    """`train_step` jitted for data parallelism: state and metrics replicated, batch sharded.

    The config is checked here (check_step_config), once, with a one-line error. JAX compiles one
    program per (stage, apply_r1) and caches it; this factory is cached too (config must be a
    hashable FrozenConfigDict), so a resumed run in the same process reuses the compiled programs.
    """
    check_step_config(G, D, config, label_groups)
    step = functools.partial(train_step, G=G, D=D, config=config, label_groups=label_groups)
    return jax.jit(step, static_argnames=("stage", "apply_r1"),
                   out_shardings=(state_sharding, state_sharding),
                   compiler_options=cpu_compiler_options(config.get("fast_compile", False)))
