"""The review grid server: page listing, images, marking, the marks file, and that the marked images
are exactly the ones the next pipeline run skips."""
import io
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from stylegan_jax.data.prepared import PreparedWriter, prepared_tf_dataset
from stylegan_jax.prep.review import make_review_server, tfrecord_offsets
from stylegan_jax.serving import serving_in_background

SHAPE = (16, 8)
NUM = 11
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    writer = PreparedWriter(out, SHAPE, shard_size=4)
    rng = np.random.default_rng(0)
    images = {}
    for index in range(NUM):
        key = f"dir/img{index:02d}.png"  # keys with '/' as prepare_folder writes them
        images[key] = rng.integers(0, 256, size=SHAPE + (3,), dtype=np.uint8)
        writer.add(key, images[key])
    writer.close({"kept": NUM})
    return out, images


@pytest.fixture()
def server(dataset, tmp_path):
    out, _ = dataset
    server = make_review_server(str(out), marks_path=str(tmp_path / "marks.txt"), port=0, page_size=4)
    with serving_in_background(server):
        yield server, f"http://127.0.0.1:{server.server_address[1]}"


def get(url):
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.status, reply.headers["Content-Type"], reply.read()


def post(url, obj):
    request = urllib.request.Request(url, data=json.dumps(obj).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def error_status(call, *args):
    with pytest.raises(urllib.error.HTTPError) as error:
        call(*args)
    return error.value.code


def test_tfrecord_offsets_find_every_record(dataset):
    out, _ = dataset
    assert [len(tfrecord_offsets(str(out / f"shard-{i:05d}.tfrecord"))) for i in range(3)] == [4, 4, 3]


def test_pages_and_images(server, dataset):
    _, base = server
    _, images = dataset
    status, content_type, page = get(base + "/")
    assert status == 200 and content_type.startswith("text/html") and b"/api/mark" in page
    info = json.loads(get(base + "/api/info")[2])
    assert (info["num_examples"], info["image_shape"], info["num_pages"], info["marked"]) == (NUM, list(SHAPE), 3, 0)
    listed = [json.loads(get(f"{base}/api/page?page={p}")[2])["items"] for p in range(3)]
    assert [len(items) for items in listed] == [4, 4, 3]
    keys = [item["key"] for items in listed for item in items]
    assert keys == sorted(images)  # dataset order
    for item in listed[2]:
        _, content_type, png = get(f"{base}/api/image?index={item['index']}")
        assert content_type == "image/png"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), images[item["key"]])
    assert error_status(get, base + "/api/page?page=3") == 400
    assert error_status(get, base + "/api/image?index=11") == 404
    assert error_status(get, base + "/api/image?index=x") == 404


def test_marks_are_saved_and_reloaded(server, dataset, tmp_path):
    review_server, base = server
    out, images = dataset
    keys = sorted(images)
    for key in (keys[7], keys[2], keys[9]):
        post(base + "/api/mark", {"key": key, "bad": True})
    reply = post(base + "/api/mark", {"key": keys[9], "bad": False})
    assert reply == {"key": keys[9], "bad": False, "marked": 2}
    assert (tmp_path / "marks.txt").read_text() == f"{keys[2]}\n{keys[7]}\n"  # dataset order
    assert error_status(post, base + "/api/mark", {"key": "nope", "bad": True}) == 404
    assert error_status(post, base + "/api/mark", {"bad": True}) == 400
    page = json.loads(get(base + "/api/page?page=0")[2])["items"]
    assert [item["bad"] for item in page] == [False, False, True, False]

    again = make_review_server(str(out), marks_path=str(tmp_path / "marks.txt"), port=0)
    try:
        assert again.marks.keys == {keys[2], keys[7]}  # a new session starts from the saved marks
    finally:
        again.server_close()


def test_marked_images_are_exactly_the_ones_training_skips(server, dataset, tmp_path):
    from stylegan_jax.data.pipeline import make_pipeline

    _, base = server
    out, images = dataset
    marked = sorted(images)[3:6]
    for key in marked:
        post(base + "/api/mark", {"key": key, "bad": True})
    batches = make_pipeline(str(out), resolution=SHAPE, batch_size=1, shuffle=False, repeat=False,
                            exclude=str(tmp_path / "marks.txt"))
    seen = [key.decode() if isinstance(key, bytes) else str(key) for batch in batches for key in batch["key"]]
    assert sorted(seen) == sorted(set(images) - set(marked))
    everything = {row["key"].decode() for row in prepared_tf_dataset(out).as_numpy_iterator()}
    assert everything == set(images)  # nothing was deleted


def test_review_command_serves_the_dataset_and_reports_bad_input_in_one_line(dataset, tmp_path):
    out, _ = dataset
    command = [sys.executable, "-m", "experiments.review", f"--data={out}", f"--marks={tmp_path / 'marks.txt'}",
               "--port=0", "--page_size=5"]
    env = dict(os.environ, PYTHONPATH=REPO)
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith(f"reviewing {NUM} images of {out}: open http://127.0.0.1:"), line
        info = json.loads(get(re.search(r"(http://\S+/)", line).group(1) + "api/info")[2])
        assert info["num_pages"] == 3  # --page_size=5
    finally:
        process.terminate()
        process.wait(30)
    missing = subprocess.run(command[:3] + [f"--data={tmp_path / 'none'}"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=120, check=False)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith(f"error: no prepared dataset at {tmp_path / 'none'} ")
