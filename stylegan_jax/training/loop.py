"""`train_and_evaluate(config, workdir)`: the progressive training loop.

Per step: read the schedule at the current image count, reset Adam where the official loop does,
feed one global batch to the stage's compiled train_step, then log / sample / checkpoint on
thousand-image boundaries. Every process runs the same loop on its share of the data; only
process 0 writes config.json, TensorBoard events and sample grids.

A diverged run stops with a one-line `checkpoint.NonFiniteError` naming the step, the stage and
the last good checkpoint: the step's `finite` metric (are its losses finite?) is fetched
whenever the loop waits for the device anyway (logging, checkpoints, samples, metrics, the end),
and `Checkpointer.save` refuses a state with a non-finite array.

workdir layout: checkpoints/<step>/ (orbax), config.json, samples/reals.png,
samples/fakes_<step>.png, tensorboard/.
"""
import contextlib
import functools
import json
import os
from typing import Callable, Optional

import jax
import ml_collections
import numpy as np
from absl import logging

from stylegan_jax import conditional
from stylegan_jax.atomic import write_json_atomically
from stylegan_jax.data import prepared
from stylegan_jax.networks import stage_shape
from stylegan_jax.training import (checkpoint, init_from, parallel, quality, samples, schedule,
                                   state as state_lib)
from stylegan_jax.training.data_stream import DataStream
from stylegan_jax.training.preemption import PreemptionWatcher
from stylegan_jax.training.steps import make_train_step
from stylegan_jax.training.summaries import Reporter
from stylegan_jax.utils import cpu_compiler_options


def exclude_file(config) -> Optional[str]:
    """The key list training leaves out: config.data.exclude, else a prepared dataset's review
    marks (prepared.REVIEW_MARKS_FILE, written by experiments.review) when the file exists."""
    if config.data.get("exclude"):
        return config.data.exclude
    marks = os.path.join(os.path.expanduser(config.data.source), prepared.REVIEW_MARKS_FILE)
    return marks if os.path.isfile(marks) else None


def pipeline_source(config, process_index: int, process_count: int) -> Callable:
    """make_source(resolution, batch_size, seed) for DataStream, reading config.data."""
    from stylegan_jax.data.pipeline import make_pipeline  # pylint: disable=import-outside-toplevel
    return functools.partial(make_pipeline, config.data.source, split="train", shuffle=True,
                             flip=config.data.flip, process_index=process_index,
                             process_count=process_count, repeat=True,
                             data_dir=config.data.data_dir, exclude=exclude_file(config))


def source_info(config) -> dict:
    """dataset_info of config.data.source, checked against the model's final resolution."""
    from stylegan_jax.data.pipeline import dataset_info  # pylint: disable=import-outside-toplevel
    info = dataset_info(config.data.source, data_dir=config.data.data_dir)
    final = stage_shape(tuple(config.model.base_shape), config.model.num_stages - 1)
    height, width = info["image_shape"]
    if height * final[1] != width * final[0] or height < final[0]:
        raise ValueError(f"data {config.data.source} is {height}x{width} but the model ends at "
                         f"{final[0]}x{final[1]}: set model.base_shape/num_stages to match")
    return info


def _crossed(before: int, after: int, every_kimg: float) -> bool:
    """Whether a multiple of every_kimg thousand images lies in (before, after]."""
    every = every_kimg * 1000.0
    return every > 0 and int(after // every) > int(before // every)


# What to change before running again after a divergence (the run resumes from the last good
# checkpoint, and would diverge the same way with the same config).
_DIVERGED_FIX = ("to go on, run again with lower learning rates (--config.schedule.g_lrate_base, "
                 "--config.schedule.d_lrate_base)")


def _diverged_at(step: int, phase: schedule.Phase, nimg: int) -> str:
    height, width = phase.shape
    return (f"training diverged at step {step} (stage {phase.stage} at {height}x{width}, "
            f"{nimg / 1000:.3f} kimg)")


def _check_losses(pending, ckpt: checkpoint.Checkpointer) -> None:
    """Raises NonFiniteError at the first of the `pending` (step, phase, nimg, finite, metrics)
    whose losses are not finite: one fetch of the flags."""
    flags = parallel.to_host([finite for _, _, _, finite, _ in pending])
    for (step, phase, nimg, _, metrics), finite in zip(pending, flags):
        if not finite:
            values = parallel.to_host(metrics)
            bad = ", ".join(f"{k}={float(v)}" for k, v in values.items() if not np.isfinite(v))
            raise checkpoint.NonFiniteError(
                f"{_diverged_at(step, phase, nimg)}: its losses are not finite ({bad}), so it was "
                f"not saved; {ckpt.last_good()}; {_DIVERGED_FIX}")


@functools.lru_cache(maxsize=None)
def _programs(G, D, config, sharding, opt_segment: int, label_groups=()):
    """(init, reset, grid sampler, metrics sampler, train_step) jitted once per process for a
    (frozen) config; init starts the Adam states in `opt_segment`. The grid sampler draws with
    constant noise, the metrics sampler with random noise per image."""
    fast = cpu_compiler_options(True)  # these run rarely: compile time matters more than speed
    init = jax.jit(functools.partial(state_lib.init_train_state, G, D, config,
                                     opt_segment=opt_segment),
                   out_shardings=sharding, compiler_options=fast)
    reset = jax.jit(functools.partial(state_lib.reset_optimizers, config=config),
                    out_shardings=sharding, compiler_options=fast)
    return (init, reset, samples.make_sampler(G, sharding, compiler_options=fast),
            samples.make_sampler(G, sharding, compiler_options=fast, noise_mode="random"),
            make_train_step(G, D, config, sharding, label_groups))


def train_and_evaluate(config, workdir: str, *, make_source: Optional[Callable] = None,
                       data_info: Optional[dict] = None, devices=None) -> state_lib.TrainState:
    """Trains (or resumes) the run in `workdir` to config.schedule.total_kimg; returns the state.

    make_source / data_info replace the input pipeline (tests, custom data); devices restricts
    the mesh (default: all devices of all processes).
    """
    config = ml_collections.FrozenConfigDict(config)
    is_main = jax.process_index() == 0
    mesh = parallel.make_mesh(devices)
    repl = parallel.replicated(mesh)
    info = data_info or source_info(config)
    spec = info.get("label_spec") if config.data.use_labels else None
    G, D = state_lib.build_networks(config, conditional.label_size(spec))
    sched = config.schedule
    geometry = dict(base_shape=tuple(config.model.base_shape), num_stages=config.model.num_stages)
    schedule.check_minibatches(sched, **geometry,
                               multiple=parallel.batch_multiple(mesh, D.mbstd_group_size))
    total_img = int(round(sched.total_kimg * 1000))
    if config.metrics.every_kimg > 0:
        quality.check_metrics_config(config.metrics)
    init, reset, sampler, metrics_sampler, train_step = _programs(
        G, D, config, repl, schedule.phase_at(0, sched, **geometry).opt_segment,
        conditional.attribute_groups(spec) if spec is not None else ())

    ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), config.checkpoint.keep)
    make_source = make_source or pipeline_source(config, jax.process_index(), jax.process_count())
    stream = DataStream(make_source, seed=config.seed,
                        reseed_every_kimg=config.data.reseed_every_kimg,
                        process_count=jax.process_count())
    if ckpt.latest_step() is not None:
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl),
                                jax.eval_shape(init))
        state, meta = ckpt.restore(abstract, defaults=init)
        stream.restore(meta.get("data"))
        logging.info("resumed %s at %.3f kimg", ckpt.directory, meta["nimg"] / 1000)
    else:
        state = init()
        if config.get("init_from"):  # fine-tuning: G, D and the averages of trained networks
            source = init_from.load_source(config.init_from)
            state = jax.device_put(init_from.initial_state(state, config, source), repl)
            logging.info("starting from %s (stage %d) at %.3f kimg", source.description,
                         source.stage, int(state.nimg) / 1000)
    step, nimg, opt_segment = (int(x) for x in parallel.to_host((state.step, state.nimg,
                                                                 state.opt_segment)))

    # The grid's latents are fixed; its reals (and labels, if conditional) are the first batch of
    # process 0's view of the data, the same on every process (they feed one SPMD program).
    grid_n = config.log.grid_rows * config.log.grid_cols
    grid_z = samples.grid_latents(config.seed, grid_n, G.latent_size)
    final_shape = stage_shape(G.base_shape, G.num_stages - 1)
    grid_source = make_source if jax.process_count() == 1 else pipeline_source(config, 0, 1)
    grid_reals = next(iter(grid_source(resolution=final_shape, batch_size=grid_n,
                                       seed=config.seed)))
    grid_labels = grid_reals["label"][:grid_n] if G.label_size else None
    sample_dir = os.path.join(workdir, "samples")
    if is_main:
        write_json_atomically(os.path.join(workdir, "config.json"), config.to_dict())
        if not os.path.exists(os.path.join(sample_dir, "reals.png")):
            samples.save_grid(grid_reals["image"][:grid_n], os.path.join(sample_dir, "reals.png"),
                              config.log.grid_rows, config.log.grid_cols)
    reporter = Reporter(workdir, sched.total_kimg, nimg / 1000, enabled=is_main)

    def save(phase):
        meta = {"nimg": nimg, "kimg": nimg / 1000.0, "stage": phase.stage, "alpha": phase.alpha,
                "label_size": G.label_size,
                "label_spec": None if spec is None else json.loads(spec.to_json()),
                "data": stream.position(), "config": config.to_dict()}
        try:
            ckpt.save(state, meta)
        except checkpoint.NonFiniteError as e:  # a parameter went bad with finite losses
            raise checkpoint.NonFiniteError(
                f"{_diverged_at(step, phase, nimg)}: {e}; {_DIVERGED_FIX}") from None

    def snapshot(phase):
        images = samples.sample_grid(sampler, state.g_ema_params, grid_z, grid_labels,
                                     state.w_avg, stage=phase.stage, alpha=phase.alpha,
                                     psi=config.log.sample_psi)
        if is_main:
            path = samples.save_grid(images, os.path.join(sample_dir, f"fakes_{step:07d}.png"),
                                     config.log.grid_rows, config.log.grid_cols,
                                     upscale_to=final_shape[0])
            reporter.image(step, "fakes", path)
            logging.info("wrote sample grid %s", path)

    def measure(phase):
        values = quality.measure(config.metrics, sampler=metrics_sampler,
                                 g_params=state.g_ema_params, w_avg=state.w_avg,
                                 latent_size=G.latent_size, stage=phase.stage,
                                 alpha=phase.alpha, make_source=grid_source,
                                 resolution=phase.shape, labels=grid_labels, seed=config.seed)
        if is_main:
            reporter.scalars(step, {f"metrics/{k}": v for k, v in values.items()})
            quality.append_jsonl(os.path.join(workdir, "metrics.jsonl"),
                                 dict(values, step=step, kimg=nimg / 1000.0, stage=phase.stage,
                                      resolution=list(phase.shape), alpha=phase.alpha))
            logging.info("metrics at %.1f kimg: %s", nimg / 1000.0, values)

    # With several processes, asking whether any was signalled is a collective: do it only
    # every few steps, at the same steps on every process.
    check_every = 1 if jax.process_count() == 1 else max(config.log.every_steps, 1)
    # The steps whose `finite` flag was not looked at yet: (step, phase, nimg, finite, metrics).
    pending = []
    # Closing the checkpointer waits for pending saves; both close also when the run stops.
    with PreemptionWatcher() as watcher, contextlib.closing(ckpt), contextlib.closing(reporter):
        while nimg < total_img:
            phase = schedule.phase_at(nimg, sched, **geometry)
            if sched.reset_opt_for_new_lod and phase.opt_segment != opt_segment:
                state, opt_segment = reset(state, opt_segment=phase.opt_segment), phase.opt_segment
            batch = parallel.global_batch(stream.next(phase, nimg), mesh)
            state, metrics = train_step(state, batch, phase.alpha, phase.g_lr, phase.d_lr,
                                        stage=phase.stage,
                                        apply_r1=step % config.loss.r1_interval == 0)
            before, step, nimg = nimg, step + 1, nimg + phase.minibatch
            pending.append((step, phase, nimg, metrics.pop("finite"), metrics))
            done = nimg >= total_img
            stop = step % check_every == 0 and watcher.requested()
            stage_ends = not done and schedule.phase_at(nimg, sched, **geometry).stage != phase.stage
            report = step % config.log.every_steps == 0 or done
            saving = stage_ends or done or stop or _crossed(before, nimg,
                                                            config.checkpoint.every_kimg)
            sampling = done or _crossed(before, nimg, config.log.sample_every_kimg)
            measuring = config.metrics.every_kimg > 0 and (
                done or _crossed(before, nimg, config.metrics.every_kimg))
            if report or saving or sampling or measuring:  # each of them waits for the device
                _check_losses(pending, ckpt)
                pending.clear()
            if report:
                reporter.report(step, phase, nimg / 1000, metrics)
            if saving:
                save(phase)
            if sampling:
                snapshot(phase)
            if measuring:
                measure(phase)
            if stop:
                logging.warning("stopped by a signal at step %d (%.3f kimg) after saving a "
                                "checkpoint; run the same command again to resume", step,
                                nimg / 1000)
                break
    logging.info("process %d: step %d, parameters crc32 %d", jax.process_index(), step,
                 checkpoint.state_checksum(parallel.to_host(state)))
    return state
