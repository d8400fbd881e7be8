"""The progressive-growing schedule of PGGAN / StyleGAN, as a pure function of images seen.

The official code (NVlabs/stylegan, training/training_loop.py, `training_schedule`) expresses the
schedule as a level of detail `lod` that counts down from log2(final / initial resolution) to 0:
each *phase* shows `lod_training_kimg` thousand images at a fixed resolution, then fades the next
resolution in over `lod_transition_kimg`. This module computes the same `lod` and maps it to the
names the networks use: `stage` (static python int, the index of the highest active block) and
`alpha` (traced float, how far that block is faded in; 1 = fully in).

Per-resolution tables (minibatch size, learning rates) are keyed like `res64`: the larger side of
the stage's image (64 for 64x32), which for square images is the official code's resolution key.
"""
import dataclasses
import math
from typing import Mapping, Tuple

from stylegan_jax.networks import stage_shape
from stylegan_jax.utils import ConfigError


@dataclasses.dataclass(frozen=True)
class Phase:
    """Everything the training step needs to know about one point of the schedule."""
    kimg: float            # thousands of real images shown so far
    lod: float             # official level of detail: 0 = final resolution fully faded in
    stage: int             # highest active block (static for jit); resolution = base * 2**stage
    alpha: float           # fade-in of that block: (0, 1) while fading, 1 otherwise
    shape: Tuple[int, int]  # (H, W) of the images at this stage
    minibatch: int         # global minibatch size (all devices of all hosts)
    g_lr: float            # generator learning rate
    d_lr: float            # discriminator learning rate
    opt_segment: int       # changes exactly when the official code resets Adam (floor or ceil of lod)


def resolution_key(shape: Tuple[int, int]) -> str:
    """Table key of a stage: 'res' + its larger side, e.g. (64, 32) -> 'res64'."""
    return f"res{max(shape)}"


def initial_stage(sched, base_shape: Tuple[int, int], num_stages: int) -> int:
    """The stage whose larger side is `sched.lod_initial_resolution` (0 = the base shape)."""
    for stage in range(num_stages):
        if max(stage_shape(base_shape, stage)) == sched.lod_initial_resolution:
            return stage
    valid = ", ".join(str(max(stage_shape(base_shape, s))) for s in range(num_stages))
    raise ValueError(f"schedule.lod_initial_resolution={sched.lod_initial_resolution} is not a "
                     f"stage resolution of this model: choose one of {valid}")


def stage_start_kimg(sched, *, stage: int, base_shape: Tuple[int, int], num_stages: int) -> float:
    """Thousands of images after which `stage` is first trained fully faded in (0 for the
    initial stage and below): phase k of the schedule trains stage initial + k from its start."""
    phases = max(stage - initial_stage(sched, base_shape, num_stages), 0)
    return phases * (sched.lod_training_kimg + sched.lod_transition_kimg)


def _lookup(table: Mapping[str, float], key: str, base):
    return table[key] if key in table else base


def phase_at(nimg: int, sched, *, base_shape: Tuple[int, int], num_stages: int) -> Phase:
    """The schedule after `nimg` real images, following the official `training_schedule`.

    `sched` has fields lod_initial_resolution, lod_training_kimg, lod_transition_kimg,
    minibatch_base, minibatch_dict, g_lrate_base, g_lrate_dict, d_lrate_base, d_lrate_dict,
    lrate_rampup_kimg (see experiments/configs/ffhq.py for what each means).
    """
    kimg = nimg / 1000.0
    phase_dur = sched.lod_training_kimg + sched.lod_transition_kimg
    phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = float(num_stages - 1 - initial_stage(sched, base_shape, num_stages) - phase_idx)
    if sched.lod_transition_kimg > 0:
        lod -= max(phase_kimg - sched.lod_training_kimg, 0.0) / sched.lod_transition_kimg
    lod = max(lod, 0.0)
    # lod in (k, k+1) means block num_stages-1-k is fading in; integer lod: fully faded in.
    stage = num_stages - 1 - int(math.floor(lod))
    alpha = 1.0 - (lod - math.floor(lod))
    shape = stage_shape(base_shape, stage)
    key = resolution_key(shape)
    g_lr = _lookup(sched.g_lrate_dict, key, sched.g_lrate_base)
    d_lr = _lookup(sched.d_lrate_dict, key, sched.d_lrate_base)
    if sched.lrate_rampup_kimg > 0:
        rampup = min(kimg / sched.lrate_rampup_kimg, 1.0)
        g_lr, d_lr = g_lr * rampup, d_lr * rampup
    # The official loop resets Adam when floor(lod) or ceil(lod) changes: once when a fade-in
    # starts and once when it ends. 2*stage - fading numbers those optimizer segments in order.
    opt_segment = 2 * stage - (1 if alpha < 1.0 else 0)
    return Phase(kimg=kimg, lod=lod, stage=stage, alpha=alpha, shape=shape,
                 minibatch=int(_lookup(sched.minibatch_dict, key, sched.minibatch_base)),
                 g_lr=float(g_lr), d_lr=float(d_lr), opt_segment=opt_segment)


def check_minibatches(sched, *, base_shape: Tuple[int, int], num_stages: int,
                      multiple: int) -> None:
    """Fail early if some stage's minibatch does not split evenly over devices and mbstd groups.

    The official code silently rounds the minibatch down; we refuse instead, so that a run's
    batch size is exactly what its config says.
    """
    for stage in range(initial_stage(sched, base_shape, num_stages), num_stages):
        key = resolution_key(stage_shape(base_shape, stage))
        batch = int(_lookup(sched.minibatch_dict, key, sched.minibatch_base))
        if batch <= 0 or batch % multiple:
            raise ConfigError(
                f"minibatch {batch} at {key} is not a positive multiple of {multiple} (devices x "
                f"minibatch-stddev group): set schedule.minibatch_dict.{key} or "
                f"schedule.minibatch_base to a multiple of {multiple}")

