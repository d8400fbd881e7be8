"""Project an image into a generator's W (or W+): find the w that redraws it, then edit it.

    python -m experiments.project --checkpoint=workdirs/demo --image=me.png --out=proj
    python -m experiments.project --checkpoint=workdirs/demo --image=me.png --out=proj \
        --space=w+ --steps=500
    python -m experiments.project --checkpoint=anime --image=art.jpg --out=proj --crop=face \
        --detector=opencv --cascade=lbpcascade_animeface.xml

--checkpoint: a training workdir (its newest checkpoint), a step directory, or an exported .npz
(which has no discriminator, so no --distance=discriminator). The image is
framed at the model's aspect ratio (--crop=centre, or the preparation tools' face crop) and
resized to its resolution. Writes into --out (a new or empty folder; nothing is overwritten):

  w.npy                 the projected w, float32 [num_layers, dlatent] (W: every row the same)
  noise.npz             the projected noise maps {layer: float32 [1, h, w, 1]}
  target.png            the framed input at the model's resolution
  reconstruction.png    the projected image (its w in the PNG's metadata, as the explorer saves)
  progress.mp4          the optimisation, one frame every --frame_every steps (.gif with
                        --video=gif, or when imageio-ffmpeg is missing)
  projection.json       settings, final distance, PSNR, per-step distances, time

See stylegan_jax/explore/project.py for the method (the StyleGAN2 projector).
"""
import os

from absl import app
from absl import flags

from stylegan_jax.utils import enable_compilation_cache, exit_with_error

OUTPUTS = ("w.npy", "noise.npz", "target.png", "reconstruction.png", "progress.mp4",
           "progress.gif", "projection.json")


def define_flags():
    """The command's flags (defined only when run as a command)."""
    flags.DEFINE_string("checkpoint", None, "training workdir, checkpoint step directory or "
                        "exported generator .npz", required=True)
    flags.DEFINE_string("image", None, "the image to project (PNG, JPEG, ...)", required=True)
    flags.DEFINE_string("out", None, "folder to write the results to (new or empty)", required=True)
    flags.DEFINE_enum("space", "w", ["w", "w+"], "w: one w for all layers; w+: one per layer")
    flags.DEFINE_integer("steps", 1000, "optimisation steps")
    flags.DEFINE_enum("distance", "pixel", ["pixel", "discriminator", "lpips"], "the distance: "
                      "multi-scale pixels, the checkpoint's discriminator features (+ pixels), "
                      "or LPIPS from --lpips")
    flags.DEFINE_string("lpips", None, "LPIPS VGG16 weights .npz (for --distance=lpips; layout "
                        "in stylegan_jax/explore/project.py LPIPS_LAYOUT)")
    flags.DEFINE_float("pixel_weight", 1.0, "weight of the pixel term of the discriminator distance")
    flags.DEFINE_enum("crop", "centre", ["centre", "face"], "framing: the centred box at the "
                      "model's aspect ratio, or the face crop of the preparation tools")
    flags.DEFINE_enum("detector", "animeface", ["animeface", "opencv", "boxes"],
                      "face detector for --crop=face")
    flags.DEFINE_string("cascade", None, "OpenCV cascade XML for --detector=opencv")
    flags.DEFINE_string("boxes", None, "JSON {image file name: [[x, y, w, h, confidence]]} for "
                        "--detector=boxes")
    flags.DEFINE_integer("w_avg_samples", 10000, "mapped z's for the average w and its spread")
    flags.DEFINE_bool("optimize_noise", True, "optimise the noise maps too")
    flags.DEFINE_integer("frame_every", 10, "a video frame every this many steps")
    flags.DEFINE_enum("video", "mp4", ["mp4", "gif"], "progress video format")
    flags.DEFINE_integer("seed", 0, "seed of the noise maps' start and of the noise on w")


def check_out_dir(out: str) -> None:
    """Refuses an --out folder that already holds results (nothing is overwritten)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out={out} is a file: give a folder")
    taken = [name for name in OUTPUTS if os.path.exists(os.path.join(out, name))]
    if taken:
        raise ValueError(f"{out} already holds a projection ({', '.join(taken)}): give a new --out")


def run(checkpoint: str, image: str, out: str, *, space: str = "w", steps: int = 1000,
        distance=None, lpips=None, pixel_weight: float = 1.0, crop: str = "centre",
        detector: str = "animeface", cascade=None, boxes=None, w_avg_samples: int = 10000,
        optimize_noise: bool = True, frame_every: int = 10, video: str = "mp4", seed: int = 0,
        progress: bool = True) -> dict:
    """Projects `image` into the generator at `checkpoint` and writes the results into `out`
    (see the module doc). Returns the projection.json record."""
    # pylint: disable=import-outside-toplevel  (keep --help and flag errors fast)
    import numpy as np
    from tqdm import tqdm
    from stylegan_jax.atomic import atomic_write, write_json_atomically, write_npz_atomically
    from stylegan_jax.explore import media, project
    from stylegan_jax.explore.explorer import Explorer
    from stylegan_jax.explore.model import load_networks
    from stylegan_jax.utils import to_uint8

    check_out_dir(out)
    config = project.ProjectionConfig(num_steps=steps, space=space, w_avg_samples=w_avg_samples,
                                      optimize_noise=optimize_noise, frame_every=frame_every,
                                      seed=seed)
    config.check()
    face_detector = None
    if crop == "face":
        from stylegan_jax.prep import crops
        face_detector = crops.make_detector(detector, cascade=cascade, boxes=boxes)
    # The image is read (its size bounded before decoding) before the model loads: bad input
    # fails fast.
    picture = project.read_image(image, exif_transpose=crop == "centre")
    bundle, disc = load_networks(checkpoint)
    explorer = Explorer(bundle)
    measure = project.make_distance(distance, disc, lpips_path=lpips, pixel_weight=pixel_weight)
    target = project.frame_image(picture, explorer.image_shape, crop=crop, detector=face_detector,
                                 key=os.path.basename(image))
    projector = project.Projector(explorer, measure, config)
    with tqdm(total=steps, desc="projecting", disable=not progress) as bar:
        def callback(step, total, dist):
            bar.update(1)
            bar.set_postfix(distance=f"{float(dist[0]):.4f}")
        result = projector.project(target, callback)
    # The reconstruction is rendered by the explorer with the projected noise maps registered,
    # i.e. exactly as the explorer renders (and edits) the projected image.
    explorer.add_noise_maps("projected", result.noise_maps(0))
    rendered = explorer.synthesize(result.w[0], noise_mode="projected").images[0]

    os.makedirs(out, exist_ok=True)
    files = {"w": os.path.join(out, "w.npy"), "noise": os.path.join(out, "noise.npz"),
             "target": os.path.join(out, "target.png"),
             "reconstruction": os.path.join(out, "reconstruction.png")}
    atomic_write(files["w"], lambda p: np.save(p, result.w[0]))
    write_npz_atomically(files["noise"], result.noise_maps(0))
    media.save_png(files["target"], target)
    media.save_png(files["reconstruction"], rendered, w=result.w[0],
                   settings={"projected_from": os.path.abspath(image), "space": space,
                             "noise": "noise.npz beside this file"})
    frames = np.stack([f[1][0] for f in result.frames])
    scale = max(1, 256 // max(explorer.image_shape))
    files["video"] = os.path.join(out, f"progress.{video}")
    try:
        if video == "mp4":
            media.save_mp4(files["video"], frames, fps=24, scale=scale)
        else:
            media.save_gif(files["video"], frames, fps=24, scale=scale)
    except RuntimeError as e:  # no imageio-ffmpeg: a GIF says the same
        print(f"note: {' '.join(str(e).splitlines())}; writing a GIF instead")
        files["video"] = os.path.join(out, "progress.gif")
        media.save_gif(files["video"], frames, fps=24, scale=scale)
    record = {
        "checkpoint": os.path.abspath(checkpoint), "image": os.path.abspath(image),
        "space": space, "steps": len(result.losses), "distance": measure.name,
        "crop": crop, "image_shape": list(explorer.image_shape),
        "final_distance": float(result.distance[0]),
        "psnr_db": float(project.psnr(to_uint8(rendered)[None], target[None])[0]),
        "seconds": round(result.seconds, 2),
        "distance_per_step": [round(float(d), 6) for d in result.distances[:, 0]],
        "files": {k: os.path.basename(v) for k, v in files.items()},
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
    }
    write_json_atomically(os.path.join(out, "projection.json"), record)
    return record


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    enable_compilation_cache()
    values = flags.FLAGS
    try:
        record = run(values.checkpoint, values.image, values.out, space=values.space,
                     steps=values.steps, distance=values.distance, lpips=values.lpips,
                     pixel_weight=values.pixel_weight, crop=values.crop,
                     detector=values.detector, cascade=values.cascade, boxes=values.boxes,
                     w_avg_samples=values.w_avg_samples, optimize_noise=values.optimize_noise,
                     frame_every=values.frame_every, video=values.video, seed=values.seed)
    except (ValueError, FileNotFoundError, ImportError, OSError) as e:
        exit_with_error(e)
    print(f"wrote {values.out}: PSNR {record['psnr_db']:.2f} dB, {record['distance']} distance "
          f"{record['final_distance']:.4f} after {record['steps']} steps ({record['seconds']:.0f} s)")


if __name__ == "__main__":
    define_flags()
    app.run(main)
