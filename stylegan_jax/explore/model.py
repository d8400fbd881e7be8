"""Loading a generator for exploration, and saving the small exported form the demo ships.

A generator to explore is a `GeneratorBundle`: the Flax module, its parameters (the EMA weights of
training) and the tracked average w (the truncation centre). It comes from

* a training workdir (`config.json` + `checkpoints/<step>/`, written by stylegan_jax.training):
  the newest checkpoint, or a given step directory, restored and checksum-verified by the
  training package's `Checkpointer`;
* an exported generator file (`.npz`, written by `save_generator`): the EMA generator only, a
  few MB, with its constructor arguments as JSON -- the form the bundled demo model ships in;
* or directly from `(module, params, w_avg)`.

`random_bundle` makes a small randomly initialised generator for tests and demos.
"""
import dataclasses
import json
import os
from typing import Any, Dict, Optional

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.atomic import write_npz_atomically
from stylegan_jax.networks import Generator
from stylegan_jax.utils import cpu_compiler_options, read_json

EXPORT_FORMAT = "stylegan_jax.generator/1"
# The bundled demo generator (experiments/bundle_demo.py writes it; the explorer's default model).
DEMO_GENERATOR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "assets", "demo_generator.npz")


@dataclasses.dataclass
class GeneratorBundle:
    """A generator ready to explore: module, parameters and average w."""
    module: Generator          # the Flax generator
    params: Any                # its parameters, {"mapping_network": ..., "synthesis_network": ...}
    w_avg: np.ndarray          # float32 [dlatent_size]: truncation centre
    provenance: Dict[str, Any] = dataclasses.field(default_factory=dict)  # where it came from
                               # (JSON: source, and step, kimg, stage, alpha of a training run)


def generator_config(G: Generator) -> Dict[str, Any]:
    """The generator's options (Generator.create's arguments) as JSON-friendly values."""
    config = G.options()
    config["base_shape"] = list(config["base_shape"])
    config["dtype"] = jnp.dtype(config["dtype"]).name
    return config


def _generator_from_config(config: Dict[str, Any]) -> Generator:
    config = dict(config)
    config["base_shape"] = tuple(config["base_shape"])
    config["dtype"] = jnp.dtype(config["dtype"])
    return Generator.create(**config)


def save_generator(path: str, bundle: GeneratorBundle) -> str:
    """Writes the generator (module config, parameters, w_avg) as one .npz, atomically."""
    if not path.endswith(".npz"):
        raise ValueError(f"exported generators are .npz files, got {path!r}: add '.npz'")
    flat = flax.traverse_util.flatten_dict(jax.device_get(bundle.params), sep="/")
    # The header keeps the provenance under "info" (the file format's name for it).
    header = {"format": EXPORT_FORMAT, "generator": generator_config(bundle.module),
              "info": bundle.provenance}
    arrays = {f"params/{k}": np.asarray(v) for k, v in flat.items()}
    arrays["w_avg"] = np.asarray(bundle.w_avg, np.float32)
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    return write_npz_atomically(path, arrays)


def _load_export(path: str) -> GeneratorBundle:
    with np.load(path) as data:
        try:
            header = json.loads(bytes(data["header"]).decode("utf-8"))
        except (KeyError, ValueError):
            raise ValueError(f"{path} is not an exported generator (no header): write it with "
                             f"stylegan_jax.explore.model.save_generator") from None
        if header.get("format") != EXPORT_FORMAT:
            raise ValueError(f"{path} has format {header.get('format')!r}, this code reads "
                             f"{EXPORT_FORMAT!r}: re-export it with this version")
        flat = {k[len("params/"):]: jnp.asarray(data[k]) for k in data.files
                if k.startswith("params/")}
        w_avg = np.asarray(data["w_avg"], np.float32)
    params = flax.traverse_util.unflatten_dict(flat, sep="/")
    provenance = dict(header.get("info", {}), source=os.path.abspath(path))
    return GeneratorBundle(_generator_from_config(header["generator"]), params, w_avg, provenance)


def _load_checkpoint(workdir: str, step: Optional[int]):
    """(GeneratorBundle, (Discriminator, its parameters)) of a training checkpoint."""
    # Imported here: the training package pulls in optax/orbax, which exports do not need.
    import ml_collections  # pylint: disable=import-outside-toplevel
    from stylegan_jax.training import checkpoint, state as state_lib  # pylint: disable=import-outside-toplevel
    config_path = os.path.join(workdir, "config.json")
    config = ml_collections.ConfigDict(read_json(
        config_path, f"no config.json in {workdir}: pass a training workdir, a checkpoint step "
                     "directory inside one, or an exported .npz"))
    ckpt_dir = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(ckpt_dir):  # checked first: the Checkpointer would create it
        raise FileNotFoundError(f"no checkpoints/ in {workdir}: train first "
                                f"(python -m experiments.train --workdir={workdir})")
    ckpt = checkpoint.Checkpointer(ckpt_dir, keep=max(int(config.checkpoint.keep), 1))
    try:
        if ckpt.latest_step() is None:
            raise FileNotFoundError(f"no checkpoint in {ckpt_dir}: train first "
                                    f"(python -m experiments.train --workdir={workdir})")
        label_size = 0
        if config.data.use_labels:  # the checkpoint's recorded labels, else its data's
            spec = checkpoint.label_spec(ckpt.read_meta(step))
            label_size = spec.dim if spec is not None else 0
        G, D = state_lib.build_networks(config, label_size)
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                                jax.eval_shape(lambda: state_lib.init_train_state(G, D, config)))
        state, meta = ckpt.restore(abstract, step)
    finally:
        ckpt.close()
    provenance = {"source": os.path.abspath(workdir), "step": int(state.step),
                  "kimg": meta.get("kimg"), "stage": meta.get("stage"), "alpha": meta.get("alpha")}
    bundle = GeneratorBundle(G, state.g_ema_params, np.asarray(state.w_avg, np.float32), provenance)
    return bundle, (D, state.d_params)


def load_generator(path: str) -> GeneratorBundle:
    """A generator from an exported .npz, a training workdir, or a checkpoint step directory.

    From a workdir the newest checkpoint is used; `<workdir>/checkpoints/<step>` picks a step.
    """
    return load_networks(path)[0]


def load_networks(path: str):
    """(GeneratorBundle, (Discriminator, parameters) or None) from what load_generator takes: a
    training checkpoint has a discriminator, an exported .npz has none."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: pass an exported generator .npz or a "
                                f"training workdir")
    if os.path.isfile(path):
        return _load_export(path), None
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if os.path.basename(parent) == "checkpoints" and os.path.basename(path).isdigit():
        return _load_checkpoint(os.path.dirname(parent), int(os.path.basename(path)))
    return _load_checkpoint(path, None)


def random_bundle(seed: int = 0, **generator_kwargs) -> GeneratorBundle:
    """A randomly initialised generator (default: 8x4 -> 32x16, 32 channels, latent 16).

    Weights are random, so images are noise-like; it is meant for tests and for trying the API.
    The noise weights (zero at init) are set to random values so that noise modes differ.
    """
    kwargs = dict(base_shape=(8, 4), num_stages=3, latent_size=16, dlatent_size=16,
                  mapping_layers=2, mapping_fmaps=16, fmap_base=64, fmap_max=32)
    kwargs.update(generator_kwargs)
    G = Generator.create(**kwargs)
    k_params, k_noise, k_w, k_extra = jax.random.split(jax.random.PRNGKey(seed), 4)
    z = jnp.zeros((1, G.latent_size), jnp.float32)
    labels = jnp.zeros((1, G.label_size), jnp.float32) if G.label_size else None
    init = jax.jit(lambda: G.init({"params": k_params, "noise": k_noise}, z, labels,
                                  stage=G.num_stages - 1), compiler_options=cpu_compiler_options(True))
    params = init()["params"]
    flat = flax.traverse_util.flatten_dict(params, sep="/")
    for i, key in enumerate(sorted(flat)):
        if key.endswith("noise/weight"):
            flat[key] = 0.1 * jax.random.normal(jax.random.fold_in(k_extra, i), flat[key].shape)
    params = flax.traverse_util.unflatten_dict(flat, sep="/")
    w_avg = np.asarray(0.1 * jax.random.normal(k_w, (G.dlatent_size,)), np.float32)
    return GeneratorBundle(G, params, w_avg, {"source": f"random(seed={seed})"})
