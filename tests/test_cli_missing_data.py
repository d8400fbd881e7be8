"""The commands given a dataset that is not there: one line on stderr naming the fix, exit status 2.

Each command runs as a user would start it, from an empty directory (so a config's relative default
such as data/rect_anime is missing too). The data is checked before JAX compiles anything, so every
command ends within seconds.
"""
import concurrent.futures
import os
import subprocess
import sys

import pytest

from stylegan_jax.utils import BAD_INPUT, exit_with_error

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_GENERATOR = os.path.join(REPO, "stylegan_jax", "assets", "demo_generator.npz")
DANBOORU = "prepare one with `python -m experiments.prepare_danbooru --metadata=... --images=... --out=DIR`"
UNKNOWN = ("unknown dataset 'nosuchset': choose one of synthetic_portraits, synthetic_portraits/128x64, "
           "synthetic_portraits/256x128, synthetic_portraits/512x256, another registered TFDS dataset, "
           "folder:PATH, or a prepared dataset directory")
PREPARE_TOOLS = "prepare one with `python -m experiments.prepare_danbooru` (Danbooru dumps)"

# name: (command after `python -m`, the start of the error line, text it must hold further on).
# {tmp} is the empty directory the command runs in.
CASES = {
    "train_rect_anime_no_data": (
        ["experiments.train", "--config=rect_anime", "--workdir=w"],
        "error: no prepared dataset at data/rect_anime (no directory {tmp}/data/rect_anime): "
        "rect_anime trains on a prepared Danbooru set, given as --config=rect_anime:DIR; " + DANBOORU, ""),
    "train_rect_anime_acgan_missing_dir": (
        ["experiments.train", "--config=rect_anime_acgan:{tmp}/danbooru", "--workdir=w"],
        "error: no prepared dataset at {tmp}/danbooru (no directory {tmp}/danbooru): rect_anime_acgan "
        "trains on a prepared Danbooru set, given as --config=rect_anime_acgan:DIR; " + DANBOORU, ""),
    "train_missing_dir": (
        ["experiments.train", "--config=demo", "--config.data.source={tmp}/prepared", "--workdir=w"],
        "error: no prepared dataset at {tmp}/prepared (no directory {tmp}/prepared): check the path",
        PREPARE_TOOLS),
    "train_missing_folder": (
        ["experiments.train", "--config=demo", "--config.data.source=folder:{tmp}/pngs", "--workdir=w"],
        "error: image folder {tmp}/pngs does not exist: check the path after folder:", ""),
    "train_unknown_tfds_name": (
        ["experiments.train", "--config=demo", "--config.data.source=nosuchset", "--workdir=w"],
        "error: " + UNKNOWN, ""),
    "preview_data_missing_dir": (
        ["experiments.preview_data", "--dataset=data/prepared", "--out=grid.png"],
        "error: no prepared dataset at data/prepared (no directory {tmp}/data/prepared): check the path",
        PREPARE_TOOLS),
    "preview_data_missing_folder": (
        ["experiments.preview_data", "--dataset=folder:{tmp}/pngs", "--out=grid.png"],
        "error: image folder {tmp}/pngs does not exist: check the path after folder:", ""),
    "preview_data_unknown_tfds_name": (
        ["experiments.preview_data", "--dataset=nosuchset", "--out=grid.png"],
        "error: " + UNKNOWN, ""),
    "train_classifier_missing_dir": (
        ["experiments.train_classifier", "--dataset={tmp}/labelled", "--out=c.msgpack"],
        "error: no prepared dataset at {tmp}/labelled (no directory {tmp}/labelled)", PREPARE_TOOLS),
    "evaluate_missing_folder": (
        ["experiments.evaluate", f"--checkpoint={DEMO_GENERATOR}", "--data=folder:{tmp}/pngs"],
        "error: image folder {tmp}/pngs does not exist: check the path after folder:", ""),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """{case: (tmp, CompletedProcess)}, the commands run side by side (each mostly imports)."""
    env = dict(os.environ, PYTHONPATH=REPO)

    def run(name):
        tmp = str(tmp_path_factory.mktemp(name))
        argv = [arg.replace("{tmp}", tmp) for arg in CASES[name][0]]
        return tmp, subprocess.run([sys.executable, "-m", *argv], cwd=tmp, env=env, capture_output=True,
                                   text=True, timeout=300, check=False)

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(CASES, pool.map(run, CASES)))


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_missing_dataset_is_one_line_naming_the_fix(results, name):
    tmp, result = results[name]
    _, start, further = CASES[name]
    lines = result.stderr.splitlines()
    assert result.returncode == BAD_INPUT == 2, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]  # no traceback, no start-up chatter
    assert lines[0].startswith(start.replace("{tmp}", tmp)), lines[0]
    assert further in lines[0]
    assert not os.path.exists(os.path.join(tmp, "w")) and not os.path.exists(os.path.join(tmp, "grid.png"))


def test_exit_with_error_prints_one_line_and_exits_2(capsys):
    with pytest.raises(SystemExit) as stop:
        exit_with_error(ValueError("first part\nsecond part"))
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert captured.err == "error: first part second part\n" and captured.out == ""
