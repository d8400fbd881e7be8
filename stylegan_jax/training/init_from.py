"""Starting a run from networks trained before: an imported StyleGAN v1 pickle or a checkpoint.

`write_imported_checkpoint` turns an imported pickle (stylegan_jax.pretrained) into a training
checkpoint of this project: a workdir with config.json and checkpoints/0, which every tool opens.

`initial_state` is `config.init_from`: a fresh TrainState whose G, D, generator average and
tracked w come from a pickle (.pkl) or a checkpoint (a workdir or one of its step directories),
with fresh optimizer states, and whose image counter starts where the schedule first trains the
checkpoint's stage fully faded in (`schedule.stage_start_kimg`). The networks of the config must
have exactly the checkpoint's parameter shapes; otherwise a one-line ConfigError names the first
parameter that differs.
"""
import json
import os
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from stylegan_jax.atomic import write_json_atomically
from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.pretrained import stylegan_v1, tf_pickle
from stylegan_jax.training import checkpoint, schedule, state as state_lib
from stylegan_jax.utils import ConfigError


class Source(NamedTuple):
    """What a run starts from (host arrays)."""
    g_params: Any
    d_params: Any
    g_ema_params: Any
    w_avg: np.ndarray
    stage: int            # the stage the source had reached
    description: str      # for messages: "pickle X" / "checkpoint X"


def imported_label_spec(label_size: int) -> Optional[LabelSpec]:
    """The labels of an imported conditional network: one attribute "class" with classes 0..K-1
    (the official conditional networks take one-hot class vectors)."""
    return LabelSpec({"class": [str(i) for i in range(label_size)]}) if label_size else None


def imported_config(base: ml_collections.ConfigDict, imported: stylegan_v1.ImportedStyleGAN):
    """`base` (a training config) with the model, generator and discriminator of `imported`."""
    config = ml_collections.ConfigDict(base.to_dict())
    config.model.base_shape = stylegan_v1.BASE_SHAPE
    config.model.num_stages = imported.num_stages
    config.model.dtype = "float32"
    for name, value in imported.generator_options.items():
        config.generator[name] = value
    for name, value in imported.discriminator_options.items():
        config.discriminator[name] = value
    config.data.use_labels = bool(imported.label_size)
    return config


def write_imported_checkpoint(workdir: str, config, imported: stylegan_v1.ImportedStyleGAN,
                              source: str) -> str:
    """Writes `imported` as step 0 of a training workdir (config.json, checkpoints/0) with the
    config `config` (imported_config's; its data.source is recorded as None: no data came with
    the pickle). Returns the checkpoint's directory."""
    spec = imported_label_spec(imported.label_size)
    G, _ = state_lib.build_networks(config, imported.label_size)
    tx = state_lib.make_optimizer(config)
    g_params, d_params, g_ema = (jax.tree.map(jnp.asarray, p) for p in
                                 (imported.g_params, imported.d_params, imported.g_ema_params))
    phase_segment = 2 * imported.stage - (1 if imported.alpha < 1.0 else 0)
    state = state_lib.TrainState(
        step=jnp.zeros((), jnp.int32), nimg=jnp.zeros((), jnp.int32),
        opt_segment=jnp.asarray(phase_segment, jnp.int32), rng=jax.random.PRNGKey(config.seed),
        g_params=g_params, d_params=d_params, g_ema_params=g_ema,
        g_opt_state=tx.init(g_params), d_opt_state=tx.init(d_params),
        w_avg=jnp.asarray(imported.w_avg, jnp.float32))
    config_dict = config.to_dict()
    config_dict["data"]["source"] = None
    meta = {"nimg": 0, "kimg": 0.0, "stage": imported.stage, "alpha": imported.alpha,
            "label_size": G.label_size,
            "label_spec": None if spec is None else json.loads(spec.to_json()),
            "data": None, "config": config_dict,
            "imported": dict(imported.info, source=os.path.abspath(source))}
    os.makedirs(workdir, exist_ok=True)
    ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), keep=1)
    try:
        step = ckpt.save(state, meta)
        ckpt.wait()
    finally:
        ckpt.close()
    write_json_atomically(os.path.join(workdir, "config.json"), config_dict)
    return os.path.join(workdir, "checkpoints", str(step))


def _checkpoint_source(path: str) -> Source:
    """G, D, averages and stage of a training checkpoint (a workdir or a step directory)."""
    path = os.path.abspath(path)
    step = None
    if os.path.basename(os.path.dirname(path)) == "checkpoints" and os.path.basename(path).isdigit():
        path, step = os.path.dirname(os.path.dirname(path)), int(os.path.basename(path))
    ckpt_dir = os.path.join(path, "checkpoints")
    if not os.path.isdir(ckpt_dir):
        raise ConfigError(f"config.init_from={path} has no checkpoints/: give a StyleGAN .pkl, a "
                          f"training workdir or one of its checkpoints/<step> directories")
    ckpt = checkpoint.Checkpointer(ckpt_dir, keep=1000, read_only=True)
    try:
        try:
            meta = ckpt.read_meta(step)
        except FileNotFoundError as e:
            raise ConfigError(f"config.init_from: {e}") from None
        config = ml_collections.ConfigDict(meta["config"])
        spec = checkpoint.label_spec(meta)
        G, D = state_lib.build_networks(config, spec.dim if spec is not None else 0)
        abstract = jax.eval_shape(lambda: state_lib.init_train_state(G, D, config))
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                                abstract)
        state, meta = ckpt.restore(abstract, step)
    finally:
        ckpt.close()
    host = jax.device_get(state)
    return Source(host.g_params, host.d_params, host.g_ema_params, np.asarray(host.w_avg),
                  int(meta.get("stage", G.num_stages - 1)), f"checkpoint {path}")


def load_source(path: str) -> Source:
    """The networks at `path`: a StyleGAN v1 pickle (a file) or a checkpoint (a directory)."""
    if not os.path.exists(path):
        raise ConfigError(f"config.init_from={path} does not exist: give a StyleGAN .pkl, a "
                          f"training workdir or a checkpoints/<step> directory")
    if os.path.isdir(path):
        return _checkpoint_source(path)
    try:
        imported = stylegan_v1.load(path)
    except (tf_pickle.UnsafePickleError, tf_pickle.NetworkPickleError,
            stylegan_v1.NotStyleGANError) as e:
        raise ConfigError(f"config.init_from: {e}") from None
    return Source(imported.g_params, imported.d_params, imported.g_ema_params, imported.w_avg,
                  imported.stage, f"pickle {path}")


def _check_shapes(name: str, have, want, source: Source) -> None:
    mismatch = checkpoint.first_shape_mismatch(checkpoint.tree_shapes(have),
                                               checkpoint.tree_shapes(want))
    if mismatch:
        key, there, needed = mismatch
        raise ConfigError(
            f"config.init_from: {source.description} does not fit this config ({name}/{key}: "
            f"{there} there, this config needs {needed}): set model.num_stages, generator.* and "
            f"discriminator.* to the checkpoint's (its config.json, or the import's)")


def initial_state(state: state_lib.TrainState, config, source: Source) -> state_lib.TrainState:
    """`state` (a fresh one) with the source's G, D, averages and tracked w, and the image
    counter at the start of the source's stage (fresh optimizer states)."""
    for name, have, want in (("g_params", source.g_params, state.g_params),
                             ("d_params", source.d_params, state.d_params),
                             ("g_ema_params", source.g_ema_params, state.g_ema_params),
                             ("w_avg", source.w_avg, state.w_avg)):
        _check_shapes(name, have, want, source)
    sched = config.schedule
    geometry = dict(base_shape=tuple(config.model.base_shape), num_stages=config.model.num_stages)
    nimg = int(round(schedule.stage_start_kimg(sched, stage=source.stage, **geometry) * 1000))
    if nimg >= int(round(sched.total_kimg * 1000)):
        raise ConfigError(
            f"schedule.total_kimg={sched.total_kimg:g} ends before the run starts: from "
            f"{source.description} (stage {source.stage}) the schedule starts at "
            f"{nimg / 1000:g} kimg, so set --config.schedule.total_kimg to {nimg / 1000:g} plus "
            f"the thousands of images to fine-tune for")
    cast = lambda tree, like: jax.tree.map(  # noqa: E731
        lambda x, y: jnp.asarray(x, y.dtype), tree, like)
    return state.replace(g_params=cast(source.g_params, state.g_params),
                         d_params=cast(source.d_params, state.d_params),
                         g_ema_params=cast(source.g_ema_params, state.g_ema_params),
                         w_avg=jnp.asarray(source.w_avg, jnp.float32),
                         nimg=jnp.asarray(nimg, jnp.int32))
