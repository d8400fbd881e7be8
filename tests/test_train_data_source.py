"""What training reads: a prepared set without the images marked bad in its review, or without the
keys of a given exclude file (training/loop.pipeline_source)."""
import ml_collections
import numpy as np

from experiments.configs import smoke
from stylegan_jax.data.prepared import REVIEW_MARKS_FILE, PreparedWriter
from stylegan_jax.training import loop

NUM = 12


def _prepared(path):
    writer = PreparedWriter(str(path), (8, 4), None, shard_size=5)
    rng = np.random.default_rng(0)
    for i in range(NUM):
        writer.add(f"img{i:02d}", rng.integers(0, 256, (8, 4, 3), dtype=np.uint8), None)
    writer.close({"source": "test"})
    return str(path)


def _keys_read(source, exclude=None):
    """Every key training draws in four passes' worth of batches from `source`."""
    config = smoke.get_config()
    with config.unlocked():
        config.data.source, config.data.exclude = source, exclude
    make_source = loop.pipeline_source(ml_collections.FrozenConfigDict(config), 0, 1)
    batches = make_source(resolution=(8, 4), batch_size=4, seed=0)
    return {k.decode() for _, batch in zip(range(NUM), batches) for k in batch["key"]}


def test_review_marks_of_a_prepared_set_are_left_out(tmp_path):
    source = _prepared(tmp_path / "set")
    assert loop.exclude_file(ml_collections.ConfigDict({"data": {"source": source}})) is None
    assert _keys_read(source) == {f"img{i:02d}" for i in range(NUM)}
    with open(tmp_path / "set" / REVIEW_MARKS_FILE, "w", encoding="utf-8") as f:
        f.write("img03\nimg07\n")
    assert _keys_read(source) == {f"img{i:02d}" for i in range(NUM)} - {"img03", "img07"}


def test_a_given_exclude_file_replaces_the_review_marks(tmp_path):
    source = _prepared(tmp_path / "set")
    (tmp_path / "set" / REVIEW_MARKS_FILE).write_text("img03\n")
    other = tmp_path / "other.txt"
    other.write_text("img00\nimg11\n")
    assert _keys_read(source, str(other)) == {f"img{i:02d}" for i in range(1, NUM - 1)}
