"""ADA's p and D's overfitting measure r_t = E[sign(D(real))] over training, from runs' logs.

    python -m benchmarks.plot_augment_p --workdirs=workdirs/small_none,workdirs/small_ada \
        --out=docs/images/ada_p.png

Reads the scalars the training loop writes to <workdir>/tensorboard (`augment_p`, `real_sign`,
`kimg`, every config.log.every_steps steps) and draws one PNG (PIL, no plotting package): p
against kimg on top (runs without augmentation have none), r_t below with ADA's target (0.6) as
a dashed line, one colour per run. Prints one JSON line per run: the final p and r_t, and the
mean r_t over the last tenth of the run.
"""
import glob
import json
import os
from typing import Dict, List, Sequence, Tuple

from absl import app, flags
from PIL import Image, ImageDraw

from stylegan_jax.utils import exit_with_error

FLAGS = flags.FLAGS
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]
TAGS = ("kimg", "augment_p", "real_sign")


def read_scalars(workdir: str, tags: Sequence[str] = TAGS) -> Dict[str, Dict[int, float]]:
    """{tag: {step: value}} of the scalar summaries in <workdir>/tensorboard (later events win,
    as after a resume)."""
    # pylint: disable=import-outside-toplevel  (TensorFlow only for reading the event files)
    from tensorflow.core.util import event_pb2
    from tensorflow.python.framework import tensor_util
    from stylegan_jax.data.tf_cpu import tensorflow_on_cpu
    tf = tensorflow_on_cpu()
    files = sorted(glob.glob(os.path.join(workdir, "tensorboard", "events.*")))
    if not files:
        raise FileNotFoundError(f"no TensorBoard events in {workdir}/tensorboard: give the "
                                f"workdir of a training run")
    out = {tag: {} for tag in tags}
    for record in tf.data.TFRecordDataset(files):
        event = event_pb2.Event.FromString(record.numpy())
        for value in event.summary.value:
            if value.tag in out:
                out[value.tag][event.step] = float(tensor_util.MakeNdarray(value.tensor))
    return out


def series(scalars: Dict[str, Dict[int, float]], tag: str) -> List[Tuple[float, float]]:
    """(kimg, value) of one tag, in step order, at the steps that logged both."""
    kimg = scalars["kimg"]
    return [(kimg[s], v) for s, v in sorted(scalars[tag].items()) if s in kimg]


def _panel(draw, box, runs, y_range, title, target=None):
    """One plot: runs [(label, colour, [(x, y)])] in box (left, top, right, bottom)."""
    left, top, right, bottom = box
    x_max = max([x for _, _, points in runs for x, _ in points] + [1e-9])
    y0, y1 = y_range
    to_px = lambda x, y: (left + (right - left) * x / x_max,                      # noqa: E731
                          bottom - (bottom - top) * (y - y0) / (y1 - y0))
    draw.rectangle(box, outline=(0, 0, 0))
    draw.text((left, top - 14), title, fill=(0, 0, 0))
    for frac in (0.0, 0.5, 1.0):
        y = y0 + frac * (y1 - y0)
        _, py = to_px(0, y)
        draw.line([(left - 4, py), (left, py)], fill=(0, 0, 0))
        draw.text((left - 34, py - 6), f"{y:.1f}", fill=(0, 0, 0))
        px, _ = to_px(frac * x_max, y0)
        draw.line([(px, bottom), (px, bottom + 4)], fill=(0, 0, 0))
        draw.text((px - 10, bottom + 6), f"{frac * x_max:.3g}", fill=(0, 0, 0))
    if target is not None:
        _, py = to_px(0, target)
        for x in range(int(left), int(right), 8):
            draw.line([(x, py), (min(x + 4, right), py)], fill=(120, 120, 120))
    for _, colour, points in runs:
        if len(points) > 1:
            draw.line([to_px(x, y) for x, y in points], fill=colour, width=2)


def plot(workdirs: Sequence[str], out: str, labels: Sequence[str] = ()) -> List[dict]:
    """Draws the PNG for the runs in workdirs; returns one summary per run."""
    labels = list(labels) or [os.path.basename(os.path.normpath(w)) for w in workdirs]
    if len(labels) != len(workdirs):
        raise ValueError(f"{len(labels)} labels for {len(workdirs)} workdirs: give one each")
    p_runs, r_runs, summaries = [], [], []
    for i, (workdir, label) in enumerate(zip(workdirs, labels)):
        scalars = read_scalars(workdir)
        colour = COLOURS[i % len(COLOURS)]
        p, r = series(scalars, "augment_p"), series(scalars, "real_sign")
        if not r:
            raise ValueError(f"{workdir} logged no real_sign: it was trained before ADA's "
                             f"statistics were logged")
        p_runs.append((label, colour, p))
        r_runs.append((label, colour, r))
        tail = [v for _, v in r[-max(len(r) // 10, 1):]]
        summaries.append({"workdir": workdir, "label": label, "kimg": r[-1][0],
                          "final_p": p[-1][1] if p else None, "final_r_t": r[-1][1],
                          "r_t_last_tenth": sum(tail) / len(tail)})
    width, height = 720, 520
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    _panel(draw, (50, 30, width - 20, 230), p_runs, (0.0, 1.0), "augmentation p")
    _panel(draw, (50, 280, width - 20, 480), r_runs, (-1.0, 1.0),
           "r_t = E[sign(D(real))]  (dashed: ADA's target 0.6)", target=0.6)
    draw.text((width // 2 - 20, height - 22), "kimg", fill=(0, 0, 0))
    for i, (label, colour, _) in enumerate(r_runs):
        draw.rectangle((width - 200, 40 + 16 * i, width - 188, 50 + 16 * i), fill=colour)
        draw.text((width - 184, 38 + 16 * i), label, fill=(0, 0, 0))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    image.save(out)
    return summaries


def define_flags() -> None:
    """The command's flags (only when run as a program)."""
    flags.DEFINE_list("workdirs", None, "training workdirs, comma-separated", required=True)
    flags.DEFINE_list("labels", [], "a legend label per workdir (default: the directory names)")
    flags.DEFINE_string("out", "augment_p.png", "PNG to write")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        for summary in plot(FLAGS.workdirs, FLAGS.out, FLAGS.labels):
            print(json.dumps(summary))
    except (ValueError, OSError) as e:
        exit_with_error(e)
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
