"""Draw a sample grid from a training run's checkpoint (its averaged generator).

    python -m experiments.sample --workdir=workdirs/demo --out=grid.png --rows=4 --cols=8 --psi=0.7
    python -m experiments.sample --workdir=workdirs/demo_acgan --labels=hair_color=blonde,mouth_open=1

Uses the newest checkpoint (or --step) and the config stored in it, at the stage and fade-in the
run had reached; nothing is trained or written except --out. A conditional run draws every cell
with --labels (attributes not named are drawn at random per cell), and truncates toward the
average w of each cell's label vector (conditional.estimate_w_avg_for_labels).
"""
import os

from absl import app
from absl import flags

from stylegan_jax.utils import enable_compilation_cache, exit_with_error


_WORKDIR = flags.DEFINE_string("workdir", None, "workdir of a training run", required=True)
_OUT = flags.DEFINE_string("out", None, "PNG to write (default: WORKDIR/samples/sample.png)")
_STEP = flags.DEFINE_integer("step", None, "checkpoint step (default: the newest)")
_ROWS = flags.DEFINE_integer("rows", 4, "grid rows")
_COLS = flags.DEFINE_integer("cols", 8, "grid columns")
_SEED = flags.DEFINE_integer("seed", 0, "seed of the latents")
_PSI = flags.DEFINE_float("psi", 1.0, "truncation toward the average w (1 = none)")
_LABELS = flags.DEFINE_string("labels", None, "conditional runs: attribute=class,... e.g. "
                              "hair_color=blonde,mouth_open=1 (unnamed attributes: random)")


def main(argv):
    enable_compilation_cache()  # a second start loads the sampler compiled by the first
    try:
        sample(argv)
    except (FileNotFoundError, ValueError) as e:  # includes CheckpointError, DatasetNotFoundError
        exit_with_error(e)


def sample(argv):
    """Loads the checkpoint and writes the grid."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # pylint: disable=import-outside-toplevel  (keep --help fast)
    import jax
    import ml_collections
    from stylegan_jax import conditional
    from stylegan_jax.training import checkpoint, parallel, samples, state as state_lib

    ckpt = checkpoint.Checkpointer(os.path.join(_WORKDIR.value, "checkpoints"), keep=1000,
                                   read_only=True)
    meta = ckpt.read_meta(_STEP.value)
    config = ml_collections.ConfigDict(meta["config"])
    spec = checkpoint.label_spec(meta)
    if _LABELS.value and spec is None:
        raise ValueError("this run is unconditional: drop --labels")
    G, D = state_lib.build_networks(config, conditional.label_size(spec))
    repl = parallel.replicated(parallel.make_mesh())
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl),
                            jax.eval_shape(lambda: state_lib.init_train_state(G, D, config)))
    state, meta = ckpt.restore(abstract, step=_STEP.value)
    count = _ROWS.value * _COLS.value
    labels, w_avg = None, state.w_avg
    if spec is not None:
        labels = conditional.complete_labels(spec, _LABELS.value or "", count, jax.random.key(_SEED.value))
        if _PSI.value != 1.0:
            w_avg = conditional.estimate_w_avg_for_labels(G, state.g_ema_params, labels,
                                                          jax.random.key(_SEED.value + 1))
    images = samples.sample_grid(
        samples.make_sampler(G, repl), state.g_ema_params,
        samples.grid_latents(_SEED.value, count, G.latent_size), labels, w_avg,
        stage=meta["stage"], alpha=meta.get("alpha", 1.0), psi=_PSI.value)
    out = _OUT.value or os.path.join(_WORKDIR.value, "samples", "sample.png")
    samples.save_grid(images, out, _ROWS.value, _COLS.value)
    print(f"wrote {out} ({count} samples at {images.shape[1]}x{images.shape[2]}, "
          f"{meta['kimg']:.1f} kimg)")


if __name__ == "__main__":
    app.run(main)
