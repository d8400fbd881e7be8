"""Ship a trained demo run as the explorer's bundled generator (stylegan_jax/assets/).

    python -m experiments.train --config=demo:long --workdir=workdirs/demo_long
    python -m experiments.bundle_demo --workdir=workdirs/demo_long

Writes, atomically, beside each other in --out_dir:
  demo_generator.npz           the EMA generator only (explore.model.save_generator), a few MB;
  demo_generator.json          how it was made: the training config, step, kimg, stage, and the
                               command above;
  demo_generator_samples.png   its sample grid (4 x 8 fixed seeds, psi 1.0 and 0.7 halves).
`python -m experiments.explore` opens the .npz when given no model.
"""
import os

from absl import app
from absl import flags

from stylegan_jax.utils import exit_with_error

_WORKDIR = flags.DEFINE_string("workdir", None, "the finished demo training run", required=True)
_OUT_DIR = flags.DEFINE_string("out_dir", None, "where to write (default: the package's assets)")
_CONFIG_NAME = flags.DEFINE_string("config_name", "demo:long", "config the run was trained with "
                                   "(recorded in the JSON)")

GRID_SEEDS = tuple(range(16))


def bundle(workdir: str, out_dir: str, config_name: str) -> dict:
    """Exports the newest checkpoint of `workdir`; returns the JSON record written."""
    # pylint: disable=import-outside-toplevel  (keep --help fast)
    import json
    import numpy as np
    from stylegan_jax.atomic import write_json_atomically
    from stylegan_jax.explore import Explorer, load_generator, save_generator
    from stylegan_jax.training.samples import save_grid

    bundle_ = load_generator(workdir)
    final = bundle_.module.num_stages - 1
    if bundle_.provenance.get("stage") != final or (bundle_.provenance.get("alpha") or 1.0) < 1.0:
        raise ValueError(f"{workdir} has not finished its last stage (stage "
                         f"{bundle_.provenance.get('stage')} of {final}): train it to the end first")
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    record = {"file": "demo_generator.npz",
              "made_by": [f"python -m experiments.train --config={config_name} "
                          f"--workdir={os.path.basename(os.path.normpath(workdir))}",
                          "python -m experiments.bundle_demo --workdir=..."],
              "step": bundle_.provenance.get("step"), "kimg": bundle_.provenance.get("kimg"),
              "image_shape": None, "training_config": config}
    bundle_.provenance = {"source": "stylegan_jax demo generator", "kimg": bundle_.provenance.get("kimg"),
                    "step": bundle_.provenance.get("step"), "stage": final, "alpha": 1.0}
    npz = save_generator(os.path.join(out_dir, "demo_generator.npz"), bundle_)
    explorer = Explorer.open(npz)
    record["image_shape"] = list(explorer.image_shape)
    images = np.concatenate([explorer.synthesize(explorer.w_from_seeds(GRID_SEEDS, psi=psi)).images
                             for psi in (1.0, 0.7)])
    save_grid(images, os.path.join(out_dir, "demo_generator_samples.png"), 4, 8)
    record["samples"] = {"file": "demo_generator_samples.png", "seeds": list(GRID_SEEDS),
                         "rows": "top two rows psi=1.0, bottom two psi=0.7"}
    write_json_atomically(os.path.join(out_dir, "demo_generator.json"), record)
    record["size_mb"] = os.path.getsize(npz) / 2 ** 20
    return record


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    out_dir = _OUT_DIR.value or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "stylegan_jax", "assets")
    try:
        record = bundle(_WORKDIR.value, out_dir, _CONFIG_NAME.value)
    except (FileNotFoundError, ValueError) as e:
        exit_with_error(e)
    print(f"wrote {out_dir}/demo_generator.npz ({record['size_mb']:.1f} MB, {record['kimg']} kimg), "
          f"demo_generator.json and demo_generator_samples.png")


if __name__ == "__main__":
    app.run(main)
