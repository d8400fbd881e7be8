"""Open a generator in the explorer's web UI.

    python -m experiments.explore                                   # the bundled demo model
    python -m experiments.explore --workdir=workdirs/demo --open_browser
    python -m experiments.explore --checkpoint=generator.npz --port=8080
    python -m experiments.explore --host=0.0.0.0 --allow_host=mybox.local   # from other machines

--workdir uses its newest checkpoint; --checkpoint takes a step directory
(<workdir>/checkpoints/<step>) or an exported .npz. Ready-made edits beside the model (X.npz:
X_edits.json, explore.recipe.ready_edits_path) become the sliders of the page's "Make a
character" panel. The API is described at /docs (see
stylegan_jax/explore/server.py).
"""
import os

from absl import app
from absl import flags

from stylegan_jax.utils import enable_compilation_cache, exit_with_error

_WORKDIR = flags.DEFINE_string("workdir", None, "training workdir: its newest checkpoint is used")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "a checkpoint step directory (<workdir>/checkpoints/<step>) or an "
    "exported generator .npz, instead of --workdir (default: the bundled demo model)")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "address to listen on (0.0.0.0: all interfaces)")
_ALLOW_HOST = flags.DEFINE_multi_string(
    "allow_host", [], "another host name (or name:port) the page may be opened under, besides "
    "127.0.0.1, localhost and [::1]; other Host headers are refused (DNS rebinding)")
_PORT = flags.DEFINE_integer("port", 8000, "port to listen on (0: any free port)")
_OPEN = flags.DEFINE_bool("open_browser", False, "open the page in a web browser")
_NOISE = flags.DEFINE_enum("noise_mode", "const", ["const", "random", "none"], "default noise")
_DETECTOR = flags.DEFINE_enum("detector", None, ["animeface", "opencv"], "face detector for "
                              "projecting uploads with the face crop (default: centre crop only)")
_CASCADE = flags.DEFINE_string("cascade", None, "OpenCV cascade XML for --detector=opencv")
_DISTANCE = flags.DEFINE_enum("project_distance", "pixel", ["pixel", "discriminator"],
                              "distance for projecting uploads (discriminator: a checkpoint's D)")
_WARM_UP = flags.DEFINE_bool("warm_up", True, "compile the explorer's programs in the background "
                             "at start (the first page's first), so that clicks do not wait")
_FAST_COMPILE = flags.DEFINE_enum(
    "fast_compile", "auto", ["auto", "on", "off"], "compile without XLA:CPU's backend "
    "optimizations (much faster compiles, slower runs); auto: on for generators of fewer than 4 "
    "million parameters (the bundled one), whose waits are the compiles")
_LPIPS = flags.DEFINE_string("lpips", None, "LPIPS VGG16 weights .npz: projects uploads with "
                             "LPIPS instead (layout: stylegan_jax/explore/project.py)")

MIN_COMPILE_SECONDS = 0.05  # programs compiled faster are not written to the persistent cache


def model_path(workdir, checkpoint) -> str:
    """The generator to open: --workdir, --checkpoint, or the bundled demo model."""
    if workdir is not None and checkpoint is not None:
        raise ValueError("give at most one of --workdir or --checkpoint")
    if workdir is not None or checkpoint is not None:
        return workdir or checkpoint
    from stylegan_jax.explore.model import DEMO_GENERATOR as demo  # pylint: disable=import-outside-toplevel
    if not os.path.isfile(demo):
        raise FileNotFoundError(f"the bundled demo model {demo} is missing: pass "
                                f"--checkpoint=PATH.npz (an exported generator) or --workdir=DIR")
    return demo


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # A second start loads the programs compiled by the first. Most of the explorer's programs
    # compile in well under the default second on small models (the bundled one), yet each is a
    # click's wait: keep all but trivial ones.
    enable_compilation_cache(min_compile_seconds=MIN_COMPILE_SECONDS)
    try:
        path = model_path(_WORKDIR.value, _CHECKPOINT.value)
        # pylint: disable=import-outside-toplevel  (keep --help and flag errors fast)
        from stylegan_jax.explore import Explorer, project
        from stylegan_jax.explore.explorer import fast_compile_for
        from stylegan_jax.explore.model import load_networks
        from stylegan_jax.explore.recipe import load_ready_edits
        from stylegan_jax.explore.server import serve
        detector = None
        if _DETECTOR.value:
            from stylegan_jax.prep.crops import make_detector
            detector = make_detector(_DETECTOR.value, cascade=_CASCADE.value)
        bundle, discriminator = load_networks(path)
        distance = project.make_distance("lpips" if _LPIPS.value else _DISTANCE.value,
                                         discriminator, lpips_path=_LPIPS.value)
        explorer = Explorer(bundle, noise_mode=_NOISE.value,
                            fast_compile=fast_compile_for(_FAST_COMPILE.value, bundle.params))
        serve(explorer, _HOST.value, _PORT.value, open_browser=_OPEN.value,
              allow_hosts=_ALLOW_HOST.value, distance=distance, face_detector=detector,
              ready_edits=load_ready_edits(path, explorer), warm_up=_WARM_UP.value)
    except (ValueError, FileNotFoundError, OSError, ImportError) as e:
        exit_with_error(e)


if __name__ == "__main__":
    app.run(main)
