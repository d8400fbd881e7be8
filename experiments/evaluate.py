r"""Quality metrics of a trained generator: SWD, FID, KID, PPL.

    python -m experiments.evaluate --workdir=workdirs/demo --metrics=swd
    python -m experiments.evaluate --workdir=workdirs/ffhq --metrics=swd,fid,kid \
        --inception=weights/pt_inception.npz --num_images=50000
    python -m experiments.evaluate --checkpoint=stylegan_jax/assets/demo_generator.npz \
        --data=synthetic_portraits --metrics=swd,ppl

Evaluates the averaged generator of the newest checkpoint of --workdir (or --checkpoint: a
checkpoint step directory or an exported .npz) at the stage and fade-in it had reached, against
the real images of its training data (--data overrides; an exported .npz needs it), without
truncation and with random noise, as the papers measure. PPL (in W, pixel-MSE distance unless a
feature network is wired in through stylegan_jax.metrics.ppl) uses constant noise. Prints a table
and one JSON line, and writes the JSON to --out (default: <workdir>/eval_<step>.json).
"""
import json
import os

from absl import app
from absl import flags

from stylegan_jax.utils import enable_compilation_cache, exit_with_error


_WORKDIR = flags.DEFINE_string("workdir", None, "training workdir (newest checkpoint)")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "checkpoint step dir or exported .npz")
_METRICS = flags.DEFINE_string("metrics", "swd", "comma-separated: swd, fid, kid, ppl")
_DATA = flags.DEFINE_string("data", None, "real images (make_pipeline source); default: the "
                            "run's config.data.source")
_SPLIT = flags.DEFINE_string("split", "train", "split of the real images")
_NUM_IMAGES = flags.DEFINE_integer("num_images", 10000, "real and generated images (SWD/FID/KID)")
_PPL_SAMPLES = flags.DEFINE_integer("ppl_samples", 10000, "latent pairs for PPL")
_BATCH = flags.DEFINE_integer("batch_size", 32, "images per generator call")
_INCEPTION = flags.DEFINE_string("inception", None, "FID Inception-v3 .npz (for fid/kid), made by "
                                 "python -m stylegan_jax.metrics.convert_fid_weights")
_SEED = flags.DEFINE_integer("seed", 0, "seed of latents, noise and descriptor sampling")
_OUT = flags.DEFINE_string("out", None, "JSON file to write (default: <workdir>/eval_<step>.json)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    enable_compilation_cache()  # a second evaluation loads the programs the first compiled
    try:
        results = run()
    except (FileNotFoundError, ValueError) as e:  # includes CheckpointError, DatasetNotFoundError
        exit_with_error(e)
    print(f"{'metric':<16}{'value':>14}")
    for name, value in results["metrics"].items():
        print(f"{name:<16}{value:>14.4f}")
    print(json.dumps(results))


def _data_source(path: str):
    """config.data.source of the run that `path` belongs to, if it is a workdir or inside one."""
    for candidate in (path, os.path.dirname(os.path.dirname(os.path.abspath(path)))):
        config_path = os.path.join(candidate, "config.json")
        if os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as f:
                data = json.load(f).get("data", {})
            return data.get("source"), data.get("data_dir")
    return None, None


def run() -> dict:
    """Loads the generator, computes the metrics, writes and returns the result record."""
    if bool(_WORKDIR.value) == bool(_CHECKPOINT.value):
        raise ValueError("give exactly one of --workdir=DIR or --checkpoint=PATH")
    # pylint: disable=import-outside-toplevel  (keep --help fast)
    import jax
    import jax.numpy as jnp
    import numpy as np
    from stylegan_jax.atomic import write_json_atomically
    from stylegan_jax.data.pipeline import dataset_info, make_pipeline
    from stylegan_jax.explore.model import load_generator
    from stylegan_jax.metrics.evaluate import evaluate, parse_metrics
    from stylegan_jax.networks import Generator, stage_shape

    names = parse_metrics(_METRICS.value)
    path = _WORKDIR.value or _CHECKPOINT.value
    source, data_dir = _data_source(path)
    source = _DATA.value or source
    if source is not None:  # the data first: a missing dataset is reported before the model loads
        dataset_info(source, data_dir=data_dir, split=_SPLIT.value)
    bundle = load_generator(path)
    G, params = bundle.module, bundle.params
    stage = bundle.provenance.get("stage")
    stage = G.num_stages - 1 if stage is None else int(stage)
    alpha = float(bundle.provenance.get("alpha") or 1.0)
    shape = stage_shape(G.base_shape, stage)
    if source is None and any(m in names for m in ("swd", "fid", "kid")):
        raise ValueError(f"{path} records no training data: pass --data=SOURCE "
                         "(e.g. synthetic_portraits or a prepared dataset directory)")

    def reals(seed):
        return make_pipeline(source, resolution=shape, batch_size=_BATCH.value, split=_SPLIT.value,
                             shuffle=True, seed=seed, repeat=True, data_dir=data_dir)

    label_batches = reals(_SEED.value + 7) if G.label_size else None

    @jax.jit
    def generate(key, labels):
        k_z, k_noise = jax.random.split(key)
        z = jax.random.normal(k_z, (_BATCH.value, G.latent_size), jnp.float32)
        return G.apply({"params": params}, z, labels, stage=stage, alpha=alpha,
                       noise_mode="random", rngs={"noise": k_noise})

    def generate_images(key, count):
        labels = None if label_batches is None else jnp.asarray(next(label_batches)["label"])
        return np.asarray(generate(key, labels))[:count]

    mapping = jax.jit(lambda z: G.apply({"params": params}, z, method=Generator.mapping))
    synthesis = lambda w: G.apply({"params": params}, w, stage=stage, alpha=alpha,  # noqa: E731
                                  noise_mode="const", method=Generator.synthesis)
    if "ppl" in names and G.label_size:
        raise ValueError("ppl of a conditional generator is not supported: drop ppl from --metrics")
    values = evaluate(names, generate_images=generate_images,
                      real_batches=reals(_SEED.value) if source else None,
                      num_images=_NUM_IMAGES.value, batch_size=_BATCH.value,
                      inception_weights=_INCEPTION.value, mapping_fn=mapping, synthesis_fn=synthesis,
                      latent_size=G.latent_size, ppl_num_samples=_PPL_SAMPLES.value, seed=_SEED.value)
    record = {"source": bundle.provenance.get("source"), "kimg": bundle.provenance.get("kimg"),
              "stage": stage, "resolution": list(shape), "alpha": alpha, "data": source,
              "num_images": _NUM_IMAGES.value, "metrics": values}
    out = _OUT.value
    if out is None and _WORKDIR.value:
        out = os.path.join(_WORKDIR.value, f"eval_{bundle.provenance.get('step', 'latest')}.json")
    if out:
        write_json_atomically(out, record)
        record["written_to"] = out
    return record


if __name__ == "__main__":
    app.run(main)
