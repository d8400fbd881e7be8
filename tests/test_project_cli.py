"""experiments/project.py: the files it writes from a training workdir (with a discriminator) and
an exported .npz (without), and its one-line errors for bad input (exit status 2)."""
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from experiments import project as project_cli
from stylegan_jax.explore import media
from stylegan_jax.explore.model import random_bundle, save_generator
from helpers import write_smoke_workdir

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A training workdir (smoke config) with one freshly initialised checkpoint."""
    path = str(tmp_path_factory.mktemp("run"))
    write_smoke_workdir(path)
    return path


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("img") / "photo.jpg")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (90, 70, 3), dtype=np.uint8)).save(path)
    return path


def test_writes_w_noise_images_video_and_record(workdir, picture, tmp_path):
    out = str(tmp_path / "proj")
    record = project_cli.run(workdir, picture, out, space="w+", steps=4, w_avg_samples=64,
                             frame_every=2, video="gif", distance="discriminator", progress=False)
    assert record["distance"] == "discriminator" and record["steps"] == 4
    assert sorted(os.listdir(out)) == ["noise.npz", "progress.gif", "projection.json",
                                       "reconstruction.png", "target.png", "w.npy"]
    on_disk = json.load(open(os.path.join(out, "projection.json"), encoding="utf-8"))
    assert on_disk["psnr_db"] == pytest.approx(record["psnr_db"])
    assert len(on_disk["distance_per_step"]) == 4
    w = np.load(os.path.join(out, "w.npy"))
    shape = tuple(record["image_shape"])
    saved = media.load_png(os.path.join(out, "reconstruction.png"))
    np.testing.assert_array_equal(saved["w"], w)  # the PNG remembers its w, as the explorer's do
    assert saved["image"].shape == (*shape, 3)
    target = np.asarray(Image.open(os.path.join(out, "target.png")))
    assert target.shape == (*shape, 3)
    mse = np.mean((saved["image"].astype(float) - target.astype(float)) ** 2)
    assert record["psnr_db"] == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-6)
    with np.load(os.path.join(out, "noise.npz")) as noise:
        assert all(noise[k].shape[0] == 1 and noise[k].shape[3] == 1 for k in noise.files)
    assert w.shape[0] == len(noise.files)  # one w and one noise map per layer
    with Image.open(os.path.join(out, "progress.gif")) as gif:
        assert gif.n_frames == 3  # steps 0 and 2, and the result
    # A second run into the same folder overwrites nothing.
    with pytest.raises(ValueError, match="already holds a projection"):
        project_cli.run(workdir, picture, out, steps=1, w_avg_samples=64, progress=False)


def test_an_exported_generator_uses_the_pixel_distance(picture, tmp_path):
    npz = save_generator(str(tmp_path / "g.npz"), random_bundle(0))
    record = project_cli.run(npz, picture, str(tmp_path / "p"), steps=2, w_avg_samples=64,
                             video="mp4", progress=False)
    assert record["distance"] == "pixel"
    assert os.path.isfile(os.path.join(str(tmp_path / "p"), record["files"]["video"]))
    with pytest.raises(ValueError, match="needs a checkpoint with a discriminator"):
        project_cli.run(npz, picture, str(tmp_path / "q"), steps=2, distance="discriminator",
                        progress=False)


def huge_png(path, width=8000, height=8000):
    """A PNG whose header claims width x height (its pixels are not there: it must be refused
    from the header, before decoding)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
                + chunk(b"IEND", b""))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.project", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO))


def test_bad_input_is_one_error_line_with_status_2(workdir, picture, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    huge_png(str(tmp_path / "huge.png"))
    cases = [(str(tmp_path / "missing.png"), "no image at"),
             (str(tmp_path / "notes.png"), "not a usable image"),
             (str(tmp_path / "huge.png"), "8000x8000 exceeds max_pixels=40000000")]
    for image, message in cases:
        result = run_cli(f"--checkpoint={workdir}", f"--image={image}",
                         f"--out={tmp_path / 'out'}", "--steps=1")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not os.path.exists(tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        project_cli.run(str(tmp_path / "nowhere"), picture,
                        str(tmp_path / "o"), progress=False)
