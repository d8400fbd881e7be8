r"""Import an NVIDIA StyleGAN (v1) TensorFlow pickle as a checkpoint of this project.

    python -m experiments.import_stylegan --pkl=karras2019stylegan-ffhq-1024x1024.pkl --out=workdirs/ffhq_official
    python -m experiments.sample --workdir=workdirs/ffhq_official --psi=0.7
    python -m experiments.explore --workdir=workdirs/ffhq_official      # or --checkpoint=OUT/generator.npz
    python -m experiments.train --config=rect_anime:/data/anime --config.init_from=workdirs/ffhq_official ...

Reads the pickle's (G, D, Gs) without TensorFlow or NVIDIA's code. A pickle can run arbitrary code
when loaded, so it is read with an unpickler that allows only the classes such a file is made of
(`dnnlib.tflib.network.Network`, NumPy arrays, plain containers; see
stylegan_jax/pretrained/tf_pickle.py) and refuses any other, naming it. Writes to --out:

  config.json, checkpoints/0/   a training checkpoint (G, D, Gs as the generator average, G's
                                dlatent_avg as the tracked w; fresh optimizer states), which
                                experiments.explore/sample/evaluate/export and
                                --config.init_from open
  generator.npz                 the explorer bundle (Gs only, stylegan_jax.explore.save_generator)
  constant_noise.npz            the pickle's fixed noise inputs (noise0..), by layer name [1, H, W, 1]
  import.json                   what was imported: architecture, the pickle's options, lod

The checkpoint records no training data (evaluate needs --data). The pickle's fixed noise inputs
are not what this project's "const" noise mode draws, so const-noise images differ from NVIDIA's
randomize_noise=False ones in the noise (the networks are the same; see docs).
"""
import os

from absl import app
from absl import flags

from stylegan_jax.utils import exit_with_error, parameter_count

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags (defined only when run as a command, so that importing
    `import_pickle` next to other commands defines no flag twice)."""
    flags.DEFINE_string("pkl", None, "NVIDIA StyleGAN v1 pickle (.pkl) holding (G, D, Gs)",
                        required=True)
    flags.DEFINE_string("out", None, "directory to write (must be new or empty)", required=True)
    flags.DEFINE_integer("seed", 0, "seed recorded in the config (latents of later tools)")


def import_pickle(pkl: str, out: str, seed: int = 0) -> dict:
    """Imports `pkl` into the new directory `out`; returns the import record (import.json)."""
    # pylint: disable=import-outside-toplevel  (keep --help fast)
    import numpy as np
    from experiments.configs import _base
    from stylegan_jax.atomic import write_json_atomically, write_npz_atomically
    from stylegan_jax.explore.model import GeneratorBundle, save_generator
    from stylegan_jax.pretrained import stylegan_v1
    from stylegan_jax.training import init_from

    if not os.path.isfile(pkl):
        raise FileNotFoundError(f"--pkl={pkl} does not exist: give the path of a StyleGAN .pkl")
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ValueError(f"--out={out} exists and is not empty: give a new directory "
                         f"(nothing was written)")
    imported = stylegan_v1.load(pkl)
    base = _base.get_base_config()
    base.seed = seed
    config = init_from.imported_config(base, imported)
    step_dir = init_from.write_imported_checkpoint(out, config, imported, pkl)
    G, _ = imported.networks()
    provenance = {"source": os.path.abspath(pkl), "stage": imported.stage,
                  "alpha": imported.alpha, "kimg": None}
    bundle = save_generator(os.path.join(out, "generator.npz"),
                            GeneratorBundle(G, imported.g_ema_params, imported.w_avg, provenance))
    if imported.constant_noise:
        write_npz_atomically(os.path.join(out, "constant_noise.npz"),
                             {k: np.asarray(v) for k, v in imported.constant_noise.items()})
    record = {"pkl": os.path.abspath(pkl), "checkpoint": step_dir, "bundle": bundle,
              "resolution": imported.resolution, "num_stages": imported.num_stages,
              "label_size": imported.label_size, "stage": imported.stage, "alpha": imported.alpha,
              "generator": imported.generator_options,
              "discriminator": imported.discriminator_options,
              "parameters": {"G": parameter_count(imported.g_ema_params),
                             "D": parameter_count(imported.d_params)},
              "pickle": imported.info}
    write_json_atomically(os.path.join(out, "import.json"), record)
    return record


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        record = import_pickle(FLAGS.pkl, FLAGS.out, FLAGS.seed)
    except (FileNotFoundError, ValueError) as e:  # includes the pickle readers' errors
        exit_with_error(e)
    res = record["resolution"]
    print(f"imported {record['pkl']}: {res}x{res}, G {record['parameters']['G']:,} and D "
          f"{record['parameters']['D']:,} parameters -> {FLAGS.out} (checkpoint "
          f"{record['checkpoint']}, explorer bundle {record['bundle']})")


if __name__ == "__main__":
    define_flags()
    app.run(main)
