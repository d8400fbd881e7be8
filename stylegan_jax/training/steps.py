"""The pure training step: one discriminator update, one generator update, the averages.

As in the official StyleGAN loop: D minimizes the logistic loss plus R1 on the reals, then G
minimizes the non-saturating loss against the updated D, with style-mixing regularization; the
generator average (half-life 10 kimg) and the tracked w follow. All randomness comes from
fold_in(state.rng, state.step), so a step depends only on the state, the batch and the schedule.
"""
import functools
from typing import Callable, Dict

import jax
import jax.numpy as jnp
import optax

from stylegan_jax import conditional, layers, losses
from stylegan_jax.networks import Discriminator, Generator, style_mixing, update_w_avg
from stylegan_jax.training.state import TrainState, make_optimizer, with_learning_rate
from stylegan_jax.utils import cpu_compiler_options


def fade_reals(images, alpha):
    """Blend the reals toward their 2x-coarser version while a stage fades in (official
    process_reals 'FadeLOD'), so D sees real images as blurred as the fading-in fakes."""
    return layers.lerp(images, layers.upscale(layers.downscale(images)), 1.0 - alpha)


def ema_beta(batch_size: int, half_life_kimg: float) -> float:
    """Per-step decay of the generator average for a given half-life in thousands of images."""
    return 0.5 ** (batch_size / (half_life_kimg * 1000.0)) if half_life_kimg > 0 else 0.0


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


def train_step(state: TrainState, batch: Dict[str, jax.Array], alpha, g_lr, d_lr, *,
               G: Generator, D: Discriminator, config, stage: int, apply_r1: bool,
               label_groups: conditional.Groups = ()):
    """One D step and one G step on the global batch. Returns (new state, metrics).

    stage and apply_r1 are static; alpha and the learning rates are traced scalars. G is asked for
    the labels of the real batch, or uniform ones (config.loss.fake_labels); label_groups
    (conditional.attribute_groups of the data's LabelSpec) lays out those and the ACGAN losses.
    """
    tx = make_optimizer(config)
    loss_cfg = config.loss
    batch_size = batch["image"].shape[0]
    acgan = D.label_size > 0 and D.conditioning == "acgan"
    conditional.check_fake_labels(loss_cfg.fake_labels)  # also when unconditional: no silent typo
    mismatch = D.label_size > 0 and loss_cfg.mismatch_weight > 0
    if mismatch and D.conditioning not in ("projection", "switch"):
        raise ValueError(f"loss.mismatch_weight needs a D that scores labels (conditioning projection "
                         f"or switch), not {D.conditioning!r}: set it to 0")
    if G.label_size and not label_groups and (mismatch or loss_cfg.fake_labels != "data"):
        raise ValueError("uniform fake labels and the matching-aware term need the label layout: "
                         "pass label_groups=conditional.attribute_groups(spec)")
    step_key = jax.random.fold_in(state.rng, state.step)
    k_d, k_g = jax.random.split(step_key)
    # Drawn apart, so k_d and k_g stay what they were before these options existed.
    k_labels, k_mismatch = jax.random.fold_in(step_key, 1), jax.random.fold_in(step_key, 2)
    real_labels = batch["label"] if G.label_size else None
    labels = None if real_labels is None else conditional.fake_labels(  # what G is asked for
        loss_cfg.fake_labels, k_labels, real_labels, label_groups)
    gen = functools.partial(generate, G, labels=labels, batch_size=batch_size, stage=stage,
                            alpha=alpha, mixing_prob=loss_cfg.style_mixing_prob)

    def d_outputs(d_params, images, labels):
        """(scores, ACGAN class logits or None) of D on images with `labels`."""
        out = D.apply({"params": d_params}, images, labels, stage=stage, alpha=alpha)
        return out if acgan else (out, None)

    def d_scores(d_params, images, labels):
        return d_outputs(d_params, images, labels)[0]

    def acgan_loss(loss_fn, logits, labels, weight):
        return loss_fn(logits, labels, label_groups, weight, loss_cfg.acgan_loss)

    # Discriminator.
    fakes = jax.lax.stop_gradient(gen(state.g_params, k_d)[0])
    reals = fade_reals(batch["image"].astype(jnp.float32), alpha)

    def d_loss_fn(d_params):
        real_scores, real_logits = d_outputs(d_params, reals, real_labels)
        fake_scores = d_scores(d_params, fakes, labels)
        loss = losses.d_logistic_loss(real_scores, fake_scores)
        r1 = jnp.zeros((), jnp.float32)
        if apply_r1 and loss_cfg.r1_gamma > 0:  # lazy R1: every r1_interval steps, k times heavier
            r1 = losses.r1_penalty(lambda x: d_scores(d_params, x, real_labels), reals,
                                   loss_cfg.r1_gamma * loss_cfg.r1_interval)
        aux = dict(d_loss=loss, r1_penalty=r1, real_score=jnp.mean(real_scores),
                   fake_score=jnp.mean(fake_scores))
        if mismatch:  # matching-aware D: reals with a wrong label count as fakes
            wrong, changed = conditional.mismatched_labels(k_mismatch, real_labels, label_groups)
            aux["d_mismatch"] = conditional.mismatch_loss(d_scores(d_params, reals, wrong), changed,
                                                          loss_cfg.mismatch_weight)
            loss = loss + aux["d_mismatch"]
        if acgan:  # ACGAN: D also learns to classify the reals (stylegan_jax/conditional.py)
            aux["d_acgan"] = acgan_loss(conditional.acgan_d_loss, real_logits, real_labels,
                                        loss_cfg.acgan_d_weight)
            loss = loss + aux["d_acgan"]
        return loss + r1, aux

    d_grads, metrics = jax.grad(d_loss_fn, has_aux=True)(state.d_params)
    d_updates, d_opt_state = tx.update(d_grads, with_learning_rate(state.d_opt_state, d_lr),
                                       state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)

    # Generator, against the updated discriminator.
    def g_loss_fn(g_params):
        images, w = gen(g_params, k_g)
        scores, logits = d_outputs(d_params, images, labels)
        aux = dict(g_loss=losses.g_nonsaturating_loss(scores))
        if acgan:  # ACGAN: G is rewarded when D's classifier recognizes the requested labels
            aux["g_acgan"] = acgan_loss(conditional.acgan_g_loss, logits, labels, loss_cfg.acgan_g_weight)
        return sum(aux.values()), (w, aux)

    (_, (w, g_metrics)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
    g_updates, g_opt_state = tx.update(g_grads, with_learning_rate(state.g_opt_state, g_lr),
                                       state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)

    beta = ema_beta(batch_size, loss_cfg.g_ema_half_life_kimg)
    g_ema_params = jax.tree.map(lambda avg, p: layers.lerp(p, avg, beta), state.g_ema_params,
                                g_params)
    new_state = state.replace(
        step=state.step + 1, nimg=state.nimg + batch_size, g_params=g_params, d_params=d_params,
        g_ema_params=g_ema_params, g_opt_state=g_opt_state, d_opt_state=d_opt_state,
        w_avg=update_w_avg(state.w_avg, jax.lax.stop_gradient(w), loss_cfg.w_avg_beta))
    metrics.update(g_metrics)
    return new_state, metrics


@functools.lru_cache(maxsize=None)
def make_train_step(G: Generator, D: Discriminator, config, state_sharding,
                    label_groups: conditional.Groups = ()) -> Callable:
    """`train_step` jitted for data parallelism: state and metrics replicated, batch sharded.

    JAX compiles one program per (stage, apply_r1) and caches it; this factory is cached too
    (config must be a hashable FrozenConfigDict), so a resumed run in the same process reuses
    the compiled programs.
    """
    step = functools.partial(train_step, G=G, D=D, config=config, label_groups=label_groups)
    return jax.jit(step, static_argnames=("stage", "apply_r1"),
                   out_shardings=(state_sharding, state_sharding),
                   compiler_options=cpu_compiler_options(config.get("fast_compile", False)))
