"""The prepared-dataset format: round trip, atomic shards, and byte-identical resume after a kill."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.data.prepared import PreparedWriter, prepared_tf_dataset, read_prepared_info

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (16, 8)
SPEC = LabelSpec({"color": ["red", "green", "blue"], "open": ["0", "1"]})
REPORT = {"source": "test", "kept": 18}

# The same writing loop runs in a child process (which kills itself) and in the test process.
WRITE_LOOP = """
def example(index):
    rng = np.random.default_rng(index)
    image = rng.integers(0, 256, size=(16, 8, 3), dtype=np.uint8)
    label = SPEC.encode({"color": index % 3, "open": (index // 3) % 2})
    return f"img{index:03d}", image, label

def write_all(out_dir, num, kill_at=None):
    writer = PreparedWriter(out_dir, (16, 8), SPEC, shard_size=4)
    for index in range(num):
        key, image, label = example(index)
        if key in writer.done_keys:
            continue
        writer.add(key, image, label)
        if index == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # a real kill: no cleanup, no flush
    return writer.close(REPORT)
"""
exec(WRITE_LOOP)  # defines example() and write_all() here, identical to the child's copy


def _shard_files(directory):
    return {name: open(os.path.join(directory, name), "rb").read()
            for name in sorted(os.listdir(directory))}


@pytest.mark.slow
def test_killed_and_resumed_run_gives_byte_identical_files(tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    write_all(reference, 18)
    child = textwrap.dedent(f"""
        import os, signal, numpy as np
        from stylegan_jax.data.labels import LabelSpec
        from stylegan_jax.data.prepared import PreparedWriter
        SPEC = LabelSpec.from_json({SPEC.to_json()!r})
        REPORT = {REPORT!r}
        """) + WRITE_LOOP + f"\nwrite_all({str(resumed)!r}, 18, kill_at=9)\n"
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, check=False,
                            env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    # Killed after example 9 of shards of 4: shards 0 and 1 complete, shard 2 half-written.
    names = set(os.listdir(resumed))
    assert {"shard-00000.json", "shard-00001.json"} <= names and "shard-00002.json" not in names
    assert "dataset.json" not in names
    writer = PreparedWriter(resumed, SHAPE, SPEC, shard_size=4)
    assert writer.done_keys == {f"img{i:03d}" for i in range(8)}
    write_all(resumed, 18)
    assert _shard_files(resumed) == _shard_files(reference)


def test_shard_without_index_is_redone(tmp_path):
    # A kill between the .tfrecord rename and the .json write leaves a shard without its index.
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    write_all(reference, 18)
    write_all(resumed, 18)
    os.remove(resumed / "shard-00004.json")
    os.remove(resumed / "shard-00003.json")
    os.remove(resumed / "dataset.json")
    with open(resumed / "shard-00003.tfrecord", "wb") as f:
        f.write(b"garbage from a killed run")
    assert len(PreparedWriter(resumed, SHAPE, SPEC, shard_size=4).done_keys) == 12
    write_all(resumed, 18)
    assert _shard_files(resumed) == _shard_files(reference)


def test_round_trip_pixels_labels_keys_and_info(tmp_path):
    info = write_all(tmp_path, 10)
    assert info["num_examples"] == 10 and [s["num_examples"] for s in info["shards"]] == [4, 4, 2]
    read_info = read_prepared_info(tmp_path)
    assert read_info["image_shape"] == SHAPE and read_info["label_spec"] == SPEC
    assert read_info["report"] == REPORT
    records = list(prepared_tf_dataset(tmp_path).as_numpy_iterator())
    assert len(records) == 10
    for index, record in enumerate(records):
        key, image, label = example(index)
        assert record["key"].decode() == key
        np.testing.assert_array_equal(record["image"], image)
        np.testing.assert_array_equal(record["label"], label)


def test_process_shards_are_disjoint_and_cover(tmp_path):
    write_all(tmp_path, 11)
    parts = [[r["key"] for r in prepared_tf_dataset(tmp_path, i, 2).as_numpy_iterator()]
             for i in range(2)]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == [f"img{i:03d}".encode() for i in range(11)]


def test_bad_inputs_raise_clear_errors(tmp_path):
    writer = PreparedWriter(tmp_path / "a", SHAPE, SPEC, shard_size=4)
    with pytest.raises(ValueError, match=r"expected uint8\[16, 8, 3\]"):
        writer.add("x", np.zeros((8, 8, 3), np.uint8), SPEC.encode({"color": 0, "open": 0}))
    with pytest.raises(ValueError, match="label spec needs 5"):
        writer.add("x", np.zeros((16, 8, 3), np.uint8), [1.0])
    writer.add("x", np.zeros((16, 8, 3), np.uint8), SPEC.encode({"color": 0, "open": 0}))
    with pytest.raises(ValueError, match="duplicate key 'x'"):
        writer.add("x", np.zeros((16, 8, 3), np.uint8), SPEC.encode({"color": 0, "open": 0}))
    write_all(tmp_path / "b", 5)
    with pytest.raises(ValueError, match="use a new out_dir or the original settings"):
        PreparedWriter(tmp_path / "b", (32, 16), SPEC, shard_size=4)
    with pytest.raises(FileNotFoundError, match="not a finished prepared dataset"):
        read_prepared_info(tmp_path / "a")
