"""The whole training state as one pytree, and the networks and optimizers it belongs to.

Everything a resumed run needs is in `TrainState`, so a checkpoint of it restores G, D, the
generator average, both Adam states, the step and image counters (hence the schedule position),
the optimizer segment (`opt_segment`), the RNG, the tracked average w and the augmentation
probability with its controller's statistics (StyleGAN users' most common resume complaint is
that one of these silently resets).

Fields added after the first checkpoints were written (`ADDED_FIELDS`) have defaults; a checkpoint
without them restores with those (`checkpoint.Checkpointer.restore`).
"""
import dataclasses
from typing import Any, Collection, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from stylegan_jax.networks import Discriminator, Generator, stage_shape
from stylegan_jax.utils import ConfigError


@flax.struct.dataclass
class TrainState:
    """All training state. Scalars are 0-d arrays so the state is a plain pytree of arrays."""
    step: jax.Array          # int32: train steps taken (each = one D and one G update)
    nimg: jax.Array          # int32: real images shown so far; the schedule is a function of it
    opt_segment: jax.Array   # int32: schedule.Phase.opt_segment the Adam states were started in
    rng: jax.Array           # uint32[2]: base key; step t uses fold_in(rng, t)
    g_params: Any            # generator parameters
    d_params: Any            # discriminator parameters
    g_ema_params: Any        # moving average of g_params (used for samples and evaluation)
    g_opt_state: Any         # Adam state of the generator
    d_opt_state: Any         # Adam state of the discriminator
    w_avg: jax.Array         # float32[dlatent]: moving average of w, for truncation
    # float32: probability of each augmentation of D's inputs (augment.py; ADA adjusts it)
    augment_p: jax.Array = dataclasses.field(default_factory=lambda: jnp.zeros((), jnp.float32))
    # float32[2]: ADA's statistics since its last adjustment: sum of sign(D(real)), reals counted
    ada_stats: jax.Array = dataclasses.field(default_factory=lambda: jnp.zeros((2,), jnp.float32))


# Fields that checkpoints written before they existed lack: restored with their defaults.
ADDED_FIELDS = ("augment_p", "ada_stats")


def build_networks(config, label_size: int = 0) -> Tuple[Generator, Discriminator]:
    """Generator and discriminator as the config describes them."""
    dtype = jnp.dtype(config.model.dtype)
    shared = dict(base_shape=tuple(config.model.base_shape), num_stages=config.model.num_stages,
                  label_size=label_size, dtype=dtype)
    return (Generator.create(**shared, **config.generator),
            Discriminator(**shared, **config.discriminator))


def make_optimizer(config) -> optax.GradientTransformation:
    """Adam (StyleGAN: b1=0, b2=0.99, eps=1e-8) with the learning rate settable at every step."""
    return optax.inject_hyperparams(optax.adam)(
        learning_rate=0.0, b1=config.optimizer.b1, b2=config.optimizer.b2, eps=config.optimizer.eps)


def frozen_d_layers(D: Discriminator, blocks: int) -> Tuple[str, ...]:
    """The discriminator layers FreezeD (Mo et al., arXiv 2002.10964) keeps fixed: the `blocks`
    resolution blocks nearest the input at the final stage (conv0 and conv1_down of the highest
    resolutions), with the fromRGB layers of those resolutions. The 4x4 block, which scores,
    always trains, so blocks ranges over 0 .. num_stages - 1."""
    if not 0 <= blocks < D.num_stages:
        raise ConfigError(f"freeze_d_blocks={blocks} must be between 0 and {D.num_stages - 1} "
                          f"(the blocks above 4x4 of this {D.num_stages}-stage discriminator)")
    names = []
    for stage in range(D.num_stages - blocks, D.num_stages):
        h, w = stage_shape(D.base_shape, stage)
        names += [f"fromrgb_{h}x{w}", f"{h}x{w}_conv0", f"{h}x{w}_conv1_down"]
    return tuple(names)


def optimizer_update(tx: optax.GradientTransformation, params, opt_state, grads, lr,
                     frozen: Collection[str] = ()):
    """One update of `params` by `grads` at learning rate `lr` (may be traced); the top-level
    layers named in `frozen` keep their values exactly (their updates are dropped).

    Returns (new params, new optimizer state).
    """
    opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams,
                                                "learning_rate": jnp.asarray(lr, jnp.float32)})
    updates, opt_state = tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    if frozen:
        new_params = {name: params[name] if name in frozen else value
                      for name, value in new_params.items()}
    return new_params, opt_state


def init_train_state(G: Generator, D: Discriminator, config, opt_segment: int = 0) -> TrainState:
    """A fresh state from `config.seed` (pure: jit it with replicated out_shardings).

    Every stage's parameters are created now, so the state never changes shape while growing.
    """
    k_g, k_noise, k_d, k_train = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    top = config.model.num_stages - 1
    labels = jnp.zeros((1, G.label_size), jnp.float32) if G.label_size else None
    z = jnp.zeros((1, G.latent_size), jnp.float32)
    g_params = G.init({"params": k_g, "noise": k_noise}, z, labels, stage=top)["params"]
    images = jnp.zeros((1, *stage_shape(G.base_shape, top), G.num_channels), jnp.float32)
    d_params = D.init({"params": k_d}, images, labels, stage=top)["params"]
    tx = make_optimizer(config)
    return TrainState(step=jnp.zeros((), jnp.int32), nimg=jnp.zeros((), jnp.int32),
                      opt_segment=jnp.asarray(opt_segment, jnp.int32), rng=k_train,
                      g_params=g_params, d_params=d_params, g_ema_params=g_params,
                      g_opt_state=tx.init(g_params), d_opt_state=tx.init(d_params),
                      w_avg=jnp.zeros((G.dlatent_size,), jnp.float32),
                      augment_p=jnp.asarray(initial_augment_p(config), jnp.float32))


def initial_augment_p(config) -> float:
    """config.augment.p, or 0 for configs from before augmentation existed (no config.augment)."""
    augment = config.get("augment")
    return float(augment.p) if augment is not None else 0.0


def reset_optimizers(state: TrainState, config, opt_segment) -> TrainState:
    """Fresh Adam states (official reset_opt_for_new_lod), tagged with the new opt_segment."""
    tx = make_optimizer(config)
    return state.replace(g_opt_state=tx.init(state.g_params), d_opt_state=tx.init(state.d_params),
                         opt_segment=jnp.asarray(opt_segment, jnp.int32))
