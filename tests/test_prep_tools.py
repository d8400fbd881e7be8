"""The prepare_* tools end to end on generated dumps: what is kept, why the rest is dropped, labels,
and a killed run resumed to the same shards as an uninterrupted one."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from experiments import prepare_danbooru as danbooru_tool
from stylegan_jax.data.prepared import prepared_tf_dataset, read_prepared_info
from stylegan_jax.prep import crops, danbooru
from stylegan_jax.prep.tags import TagVocabulary
from helpers import make_fake_dump, post_pixels, read_examples

SHAPE = (32, 16)
STILL = ("jpg", "png")


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    """48 posts with 24..90 px images, two corrupt files and one missing, and face boxes of side 16
    (crop = 32x16 = SHAPE, so crops come out pixel-exact) of five kinds, by position."""
    root = tmp_path_factory.mktemp("dump")
    truth = make_ground_truth_with_images(root)
    boxes, outcome = {}, {}
    for index, post in enumerate(truth):
        w, h, kind = post["width"], post["height"], index % 5
        boxes[str(post["id"])] = {
            0: [[0, 0, 16, 16, 0.9]],                                  # fits: crop rows 0..32, cols 0..16
            1: [],                                                      # no face
            2: [[w - 16, h - 20, 16, 16, 0.9]],                         # face fits, the part below does not
            3: [[0, 0, 16, 16, 0.1], [w - 16, 0, 16, 16, 0.8]],         # unsure face, then a good one at the right
            4: [[0, 0, 4, 4, 0.9]],                                     # too small
        }[kind]
        outcome[post["id"]] = {0: "kept_left", 1: "no_face_detected", 2: "no_usable_face", 3: "kept_right",
                               4: "no_usable_face"}[kind]
    return root, truth, boxes, outcome


def make_ground_truth_with_images(root):
    truth, _ = make_fake_dump(root, 48, seed=5, size_range=(24, 90), images=True)
    readable = [t for t in truth if t["ext"] in STILL and t["height"] >= 32 and t["width"] >= 16]
    for post in readable[:2]:  # corrupt two files
        path = danbooru.image_path(str(root / "images"), _post(post))
        with open(path, "wb") as file:
            file.write(b"corrupt")
    os.remove(danbooru.image_path(str(root / "images"), _post(readable[2])))
    for post, fate in zip(readable[:3], ("unreadable_image", "unreadable_image", "image_missing")):
        post["broken"] = fate
    return truth


def _post(post):
    return danbooru.Post(post["id"], post["created"], post["width"], post["height"], post["ext"], post["rating"],
                         0, post["favs"], {})


def run_danbooru(root, boxes, out, detector=None, shard_size=4):
    return danbooru_tool.prepare_danbooru(
        str(root / "metadata"), str(root / "images"), str(out), shape=SHAPE,
        post_filter=danbooru.PostFilter(min_height=32, min_width=16),
        detector=detector or crops.KnownBoxDetector(boxes),
        crop_settings=crops.CropSettings(min_confidence=0.5, min_face_size=8),
        vocabulary=TagVocabulary.load("default"), shard_size=shard_size)


def test_danbooru_keeps_exactly_the_usable_faces(dump, tmp_path):
    root, truth, boxes, outcome = dump
    report = run_danbooru(root, boxes, tmp_path / "out")
    candidates = [t for t in truth if t["ext"] in STILL and t["height"] >= 32 and t["width"] >= 16]
    expected_drops = {}
    for post in candidates:
        fate = post.get("broken") or outcome[post["id"]]
        if not fate.startswith("kept"):
            expected_drops[fate] = expected_drops.get(fate, 0) + 1
    kept = [t for t in candidates if "broken" not in t and outcome[t["id"]].startswith("kept")]
    assert report["dropped"] == dict(sorted(expected_drops.items()))
    assert report["kept_examples"] == len(kept) and report["items"] == len(candidates)
    assert report["filters_removed"]["not_a_still_image"] == sum(t["ext"] not in STILL for t in truth)

    examples = read_examples(tmp_path / "out")
    assert sorted(examples) == sorted(str(t["id"]) for t in kept)
    vocabulary = TagVocabulary.load("default")
    for post in kept:
        image, label = examples[str(post["id"])]
        pixels = post_pixels(post)
        expected = pixels[:32, :16] if outcome[post["id"]] == "kept_left" else pixels[:32, -16:]
        assert np.array_equal(image, expected)
        gender = "girl" if "1girl" in post["general"] else "boy" if "1boy" in post["general"] else "other"
        assert vocabulary.spec.decode(label)["gender"] == gender
        assert vocabulary.spec.decode(label)["mouth_open"] == ("1" if "open_mouth" in post["general"] else "0")
    assert report["tag"].get("1girl", 0) == sum("1girl" in t["general"] for t in kept)
    assert report["label"]["gender"].get("boy", 0) == sum("1boy" in t["general"] and "1girl" not in t["general"]
                                                          for t in kept)
    assert report["face_rejected"]["face_low_confidence"] == sum(outcome[t["id"]] == "kept_right" for t in candidates
                                                                 if "broken" not in t)
    assert read_prepared_info(tmp_path / "out")["report"] == json.loads(json.dumps(report))


class DetectorKilledAt(crops.KnownBoxDetector):
    """Known boxes, but the run dies (like a kill) on the kill_at-th image."""

    def __init__(self, boxes, kill_at):
        super().__init__(boxes)
        self.calls, self.kill_at = 0, kill_at

    def detect(self, image, key):
        self.calls += 1
        if self.calls == self.kill_at:
            raise KeyboardInterrupt("simulated kill")
        return super().detect(image, key)


def _dataset_files(directory):
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))
            if name.startswith("shard-") or name == "dataset.json"}


@pytest.mark.parametrize("kill_at", [3, 17])
def test_killed_run_resumes_to_the_same_dataset(dump, tmp_path, kill_at):
    root, _, boxes, _ = dump
    whole = DetectorKilledAt(boxes, kill_at=-1)
    run_danbooru(root, boxes, tmp_path / "whole", detector=whole)
    with pytest.raises(KeyboardInterrupt):
        run_danbooru(root, boxes, tmp_path / "resumed", detector=DetectorKilledAt(boxes, kill_at))
    with open(tmp_path / "resumed" / "preparation_log.jsonl", "a") as log:
        log.write('{"item": "12')  # a line torn by the kill
    resumed = DetectorKilledAt(boxes, kill_at=-1)
    run_danbooru(root, boxes, tmp_path / "resumed", detector=resumed)
    assert _dataset_files(tmp_path / "resumed") == _dataset_files(tmp_path / "whole")
    # resumed, not restarted: the logged drops and complete shards' images were not detected again
    assert whole.calls - (kill_at - 1) <= resumed.calls < whole.calls


KILLED_CHILD = """
import itertools, os, signal, sys
from absl import app
from experiments import prepare_danbooru
from stylegan_jax.prep import crops
calls, detect = itertools.count(1), crops.KnownBoxDetector.detect
def detect_or_die(self, image, key):
    if next(calls) == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)  # a real kill: no cleanup, nothing flushed
    return detect(self, image, key)
crops.KnownBoxDetector.detect = detect_or_die
prepare_danbooru.define_flags()
app.run(prepare_danbooru.main, argv=["prepare_danbooru"] + sys.argv[2:])
"""
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command_line_options(root, boxes_file):
    """The same preparation as flags (for the command) and as prepare()'s keyword arguments."""
    argv = [f"--metadata={root / 'metadata'}", f"--images={root / 'images'}", "--shape=32x16", "--detector=boxes",
            f"--boxes={boxes_file}", "--max_age_years=-1", "--ratings=g,s,q,e", "--exclude_tags=",
            "--margin=0", "--min_confidence=0.5", "--shard_size=4"]
    kwargs = dict(metadata=str(root / "metadata"), images=str(root / "images"), shape=(32, 16), detector="boxes",
                  boxes=str(boxes_file), max_age_years=-1, ratings=("g", "s", "q", "e"), exclude_tags=(),
                  margin=0, min_confidence=0.5, shard_size=4)
    return argv, kwargs


def run_command(*argv):
    return subprocess.run([sys.executable, *argv], cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_a_killed_process_resumes_to_the_same_dataset(dump, tmp_path):
    root, _, boxes, _ = dump
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    args, kwargs = command_line_options(root, tmp_path / "boxes.json")
    assert danbooru_tool.prepare(out=str(tmp_path / "whole"), **kwargs)["kept_examples"] >= 8  # several shards
    child = run_command("-c", KILLED_CHILD, "20", *args, f"--out={tmp_path / 'resumed'}")
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert not (tmp_path / "resumed" / "dataset.json").exists()
    danbooru_tool.prepare(out=str(tmp_path / "resumed"), **kwargs)  # the killed run's settings: no refusal
    assert _dataset_files(tmp_path / "resumed") == _dataset_files(tmp_path / "whole")


def test_a_trial_run_with_a_limit_continues_into_the_full_run(dump, tmp_path):
    root, _, boxes, _ = dump
    trial = danbooru_tool.prepare_danbooru(
        str(root / "metadata"), str(root / "images"), str(tmp_path / "continued"), shape=SHAPE,
        post_filter=danbooru.PostFilter(min_height=32, min_width=16), detector=crops.KnownBoxDetector(boxes),
        crop_settings=crops.CropSettings(min_confidence=0.5, min_face_size=8),
        vocabulary=TagVocabulary.load("default"), shard_size=4, limit=10)
    assert trial["items"] == 10
    continued = run_danbooru(root, boxes, tmp_path / "continued")
    # The trial closed a short last shard, so the shards split differently; the examples, their
    # order and the report are the same.
    assert continued == run_danbooru(root, boxes, tmp_path / "whole")
    rows = [list(prepared_tf_dataset(tmp_path / name).as_numpy_iterator()) for name in ("continued", "whole")]
    assert [row["key"] for row in rows[0]] == [row["key"] for row in rows[1]]
    assert all(np.array_equal(a["image"], b["image"]) for a, b in zip(*rows))


def test_resuming_with_other_settings_is_refused(dump, tmp_path):
    root, _, boxes, _ = dump
    run_danbooru(root, boxes, tmp_path / "out")
    with pytest.raises(ValueError, match="other settings"):
        danbooru_tool.prepare_danbooru(str(root / "metadata"), str(root / "images"), str(tmp_path / "out"),
                                       shape=SHAPE, post_filter=danbooru.PostFilter(min_height=40),
                                       detector=crops.KnownBoxDetector(boxes),
                                       vocabulary=TagVocabulary.load("default"), shard_size=4)


def test_danbooru_command_line(dump, tmp_path):
    root, _, boxes, _ = dump
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    args, kwargs = command_line_options(root, tmp_path / "boxes.json")
    result = run_command("-m", "experiments.prepare_danbooru", *args, "--vocabulary=none", f"--out={tmp_path / 'cli'}")
    assert result.returncode == 0, result.stderr[-2000:]
    printed, wrote = result.stdout.rstrip().rsplit("\n", 1)
    report = danbooru_tool.prepare(out=str(tmp_path / "api"), vocabulary="none", **kwargs)
    assert json.loads(printed) == json.loads(json.dumps(report))  # the flags' defaults are prepare()'s
    assert wrote.startswith(f"wrote {report['kept_examples']} examples in ") and wrote.endswith(str(tmp_path / "cli"))
    assert report["kept_examples"] == run_danbooru(root, boxes, tmp_path / "boxes_api")["kept_examples"]
    bad = run_command("-m", "experiments.prepare_danbooru", "--metadata=x", "--images=y", "--out=z", "--ratings=s,nsfw")
    assert bad.returncode == 1 and "unknown ratings ['nsfw']: choose among g, s, q, e" in bad.stderr, bad.stderr
    missing = run_command("-m", "experiments.prepare_danbooru", f"--metadata={tmp_path / 'none'}", "--images=y",
                          f"--out={tmp_path / 'o'}", "--crop=centre")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("error: "), missing.stderr
