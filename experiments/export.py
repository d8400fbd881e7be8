r"""Export a trained generator (its EMA weights, at the final resolution) for other runtimes.

    python -m experiments.export --workdir=workdirs/demo --format=onnx --out=generator.onnx
    python -m experiments.export --checkpoint=workdirs/demo/checkpoints/12000 \
        --format=savedmodel --out=generator_tf --edit_layers=16x8_conv1,32x16_conv0_up
    python -m experiments.export --workdir=workdirs/demo --recipe=open_mouth.json --out=g.onnx

Writes the model and a manifest beside it (generator.onnx -> generator.json) listing the inputs
(z or w, psi, labels, one edit offset per --edit_layers entry), the output and the layers. See
docs/export.md for running it from C# (ONNX Runtime) and Unity Sentis.
"""
from absl import app
from absl import flags

from stylegan_jax.utils import exit_with_error

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags (defined only when run as a command, so that importing `run_export`
    next to other commands defines no flag twice)."""
    flags.DEFINE_string("workdir", None, "training workdir: its newest checkpoint is used")
    flags.DEFINE_string("checkpoint", None, "a checkpoint step directory "
                        "(<workdir>/checkpoints/<step>) or an exported generator .npz, instead of "
                        "--workdir")
    flags.DEFINE_enum("format", "onnx", ["onnx", "savedmodel"], "output format")
    flags.DEFINE_string("out", None, "output file (.onnx) or directory (SavedModel)", required=True)
    flags.DEFINE_enum("input", "z", ["z", "w"], "latent input: z, or per-layer w")
    flags.DEFINE_list("edit_layers", [], "layers that get an edit-offset input, e.g. "
                      "16x8_conv1,32x16_conv0_up")
    flags.DEFINE_string("recipe", None, "an explorer recipe (.json): its edited layers become edit "
                        "inputs and the recipe is copied into the manifest")
    flags.DEFINE_enum("noise", "const", ["const", "none"],
                      "per-layer noise: the network's fixed noise, or none")
    flags.DEFINE_enum("layout", "nchw", ["nchw", "nhwc"],
                      "layout of the images and edit inputs (NCHW suits engines)")
    flags.DEFINE_integer("truncation_cutoff", 8,
                         "psi applies to the layers below this one (0 or less = all)")
    flags.DEFINE_bool("local_edits", True, "edited images keep the unedited image's instance-norm "
                      "statistics, as the explorer renders them")
    flags.DEFINE_bool("overwrite", False, "replace an existing output")


def recipe_layers(path: str):
    """(edited layers in order of first use, recipe JSON) of an explorer recipe file."""
    import os  # pylint: disable=import-outside-toplevel
    from stylegan_jax.explore.recipe import Recipe  # pylint: disable=import-outside-toplevel
    if not os.path.isfile(path):
        raise FileNotFoundError(f"recipe {path} does not exist: save one from the explorer first")
    with open(path, encoding="utf-8") as f:
        recipe = Recipe.from_json(f.read())
    layers = list(dict.fromkeys(edit.layer for edit in recipe.edits))
    return layers, recipe.to_json()


def run_export(workdir, checkpoint, fmt, out, *, input_kind="z", edit_layers=(), recipe=None,
               noise="const", layout="nchw", truncation_cutoff=8, local_edits=True,
               overwrite=False) -> dict:
    """Loads the generator and exports it; returns the manifest (also used by tests)."""
    # pylint: disable=import-outside-toplevel  (keep --help and flag errors fast)
    from stylegan_jax.explore.model import load_generator
    from stylegan_jax.export import ExportOptions, export
    if (workdir is None) == (checkpoint is None):
        raise ValueError("give exactly one of --workdir (newest checkpoint) or --checkpoint")
    recipe_json = None
    if recipe:
        layers, recipe_json = recipe_layers(recipe)
        edit_layers = list(dict.fromkeys(list(edit_layers) + layers))
    bundle = load_generator(workdir or checkpoint)
    options = ExportOptions(input_kind=input_kind, edit_layers=tuple(edit_layers), noise=noise,
                            layout=layout,
                            truncation_cutoff=truncation_cutoff if truncation_cutoff > 0 else None,
                            local_edits=local_edits)
    stage, final = bundle.provenance.get("stage"), bundle.module.num_stages - 1
    if stage is not None and stage < final:
        from absl import logging  # pylint: disable=import-outside-toplevel
        logging.warning("the checkpoint was saved while training stage %d of %d: the exported "
                        "final-resolution layers are not (fully) trained yet", stage, final)
    source = bundle.provenance.get("source")
    if bundle.provenance.get("step") is not None:
        source = f"{source} (step {bundle.provenance['step']})"
    manifest = export(fmt, bundle.module, bundle.params, bundle.w_avg, options, out,
                      source=source, overwrite=overwrite, recipe=recipe_json)
    return manifest


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import time  # pylint: disable=import-outside-toplevel
    start = time.perf_counter()
    try:
        manifest = run_export(FLAGS.workdir, FLAGS.checkpoint, FLAGS.format, FLAGS.out,
                              input_kind=FLAGS.input, edit_layers=FLAGS.edit_layers,
                              recipe=FLAGS.recipe, noise=FLAGS.noise, layout=FLAGS.layout,
                              truncation_cutoff=FLAGS.truncation_cutoff,
                              local_edits=FLAGS.local_edits, overwrite=FLAGS.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        exit_with_error(e)
    from stylegan_jax.export import manifest_path  # pylint: disable=import-outside-toplevel
    inputs = ", ".join(f"{s['name']}{s['shape']}" for s in manifest["inputs"])
    print(f"wrote {FLAGS.out} and {manifest_path(FLAGS.out)} in "
          f"{time.perf_counter() - start:.1f} s; inputs: {inputs}; output: images"
          f"{manifest['outputs'][0]['shape']} in [-1, 1]")


if __name__ == "__main__":
    define_flags()
    app.run(main)
