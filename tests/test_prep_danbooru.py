"""Danbooru metadata: both release formats parse, malformed lines are counted, and every filter
removes exactly the posts the generated ground truth says it should.
"""
import datetime as dt
import json
import os

import pytest

from stylegan_jax.prep import danbooru
from helpers import UTC, make_fake_dump, make_ground_truth, new_format, write_metadata


def test_both_formats_parse_to_the_ground_truth(tmp_path):
    truth, num_malformed = make_fake_dump(tmp_path, 300)
    stats = {}
    posts = list(danbooru.iter_posts(str(tmp_path / "metadata"), stats))
    assert stats == {"records": 300 + num_malformed, "malformed": num_malformed, "duplicate_id": 0, "posts": 300,
                     "skipped_files": []}
    assert sorted(p.id for p in posts) == sorted(t["id"] for t in truth)
    by_id = {t["id"]: t for t in truth}
    for post in posts:
        t = by_id[post.id]
        assert (post.created_at, post.image_width, post.image_height) == (t["created"], t["width"], t["height"])
        assert (post.file_ext, post.rating, post.fav_count) == (t["ext"], t["rating"], t["favs"])
        assert post.tags.get("general", ()) == tuple(t["general"])
        assert post.tags.get("character", ()) == tuple(t["character"])


def test_parquet_metadata_matches_json_lines(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    truth = make_ground_truth(40, seed=1)
    pq.write_table(pa.Table.from_pylist([new_format(p) for p in truth]), tmp_path / "posts.parquet")
    (tmp_path / "posts.jsonl").write_text("".join(json.dumps(new_format(p)) + "\n" for p in truth))
    from_parquet = list(danbooru.iter_posts(str(tmp_path / "posts.parquet"), {}))
    from_json = list(danbooru.iter_posts(str(tmp_path / "posts.jsonl"), {}))
    assert from_parquet == from_json and len(from_parquet) == 40


def test_duplicates_keep_the_first_and_missing_metadata_is_a_clear_error(tmp_path):
    truth = make_ground_truth(10)
    write_metadata(tmp_path / "a", truth, malformed=[])
    write_metadata(tmp_path / "a" / "again", truth[:3], malformed=[])
    stats = {}
    assert len(list(danbooru.iter_posts(str(tmp_path / "a"), stats))) == 10
    assert stats["duplicate_id"] == 3
    with pytest.raises(FileNotFoundError, match="metadata"):
        list(danbooru.iter_posts(str(tmp_path / "nowhere"), {}))


def test_image_path_follows_the_release_layout():
    post = danbooru.parse_post(new_format(make_ground_truth(1)[0]) | {"id": 1234567, "file_ext": "png"})
    assert danbooru.image_path("/data", post) == os.path.join("/data", "0567", "1234567.png")


@pytest.mark.parametrize("reference_date", [None, dt.datetime(2018, 6, 1, tzinfo=UTC)])
def test_each_filter_removes_exactly_its_posts(tmp_path, reference_date):
    truth, _ = make_fake_dump(tmp_path, 300, seed=2)
    post_filter = danbooru.PostFilter(min_favs=6, max_age_years=3, reference_date=reference_date,
                                      min_height=512, min_width=256, ratings=("g", "s"),
                                      exclude_tags=("lying", "on_side"))
    kept, removed = danbooru.select_posts(str(tmp_path / "metadata"), post_filter, {})
    assert post_filter.apply(list(danbooru.iter_posts(str(tmp_path / "metadata"), {}))) == (kept, removed)

    # The expectation, from the ground truth, filter by filter in the documented order.
    reference = reference_date or max(t["created"] for t in truth)
    remaining, expected_removed = list(truth), {}
    for reason, keep in [
        ("not_a_still_image", lambda t: t["ext"] in ("jpg", "png")),
        ("rating", lambda t: t["rating"] in ("g", "s")),
        ("too_few_favs", lambda t: t["favs"] >= 6),
        ("too_old", lambda t: (reference - t["created"]).total_seconds() <= 3 * 365.2425 * 86400),
        ("too_small", lambda t: t["height"] >= 512 and t["width"] >= 256),
        ("excluded_tag", lambda t: "lying" not in t["general"] and "on_side" not in t["general"]),
    ]:
        expected_removed[reason] = sum(not keep(t) for t in remaining)
        remaining = [t for t in remaining if keep(t)]
    assert removed == expected_removed
    assert list(removed) == list(expected_removed)  # reported in order of application
    assert all(count > 0 for count in removed.values())  # the fake data exercises every filter
    assert [p.id for p in kept] == sorted(t["id"] for t in remaining)


def test_parquet_without_pyarrow_names_the_install(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def without_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    (tmp_path / "posts.parquet").write_bytes(b"PAR1")
    monkeypatch.setattr(builtins, "__import__", without_pyarrow)
    with pytest.raises(ImportError, match="pip install pyarrow"):
        list(danbooru.iter_posts(str(tmp_path / "posts.parquet"), {}))
