"""Danbooru metadata: both release formats parse, malformed lines are counted, and every filter
removes exactly the posts the generated ground truth says it should.

make_fake_dump() is also used by the other test_prep_* files (end-to-end runs on its images).
"""
import datetime as dt
import json
import os

import numpy as np
import pytest
from PIL import Image

from stylegan_jax.prep import danbooru

UTC = dt.timezone.utc
TAG_POOL = ["1girl", "1boy", "solo", "smile", "lying", "on_side", "blonde_hair", "black_hair", "blue_eyes",
            "red_eyes", "open_mouth", "hairband", "long_hair"]
MALFORMED_LINES = [
    "{not json at all",
    json.dumps(["a", "list"]),
    json.dumps({"id": "12", "created_at": "2015-01-01 00:00:00 UTC"}),  # no sizes, favourites, ext, rating
    json.dumps({"id": "x13", "created_at": "2015-01-01 00:00:00 UTC", "image_width": "10", "image_height": "10",
                "file_ext": "jpg", "rating": "s", "favs": []}),  # id not a number
    json.dumps({"id": 14, "created_at": "yesterday", "image_width": 10, "image_height": 10, "file_ext": "jpg",
                "rating": "s", "fav_count": 1}),  # unparseable date
]


def make_ground_truth(num_posts, seed=0, size_range=(200, 1200)):
    """Random posts as plain dicts: the expectation every test computes from."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, 3_000_000), size=num_posts, replace=False)
    start = dt.datetime(2010, 1, 1, tzinfo=UTC).timestamp()
    end = dt.datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    posts = []
    for post_id in ids:
        tags = [t for t in TAG_POOL if rng.random() < 0.25]
        posts.append({
            "id": int(post_id),
            "created": dt.datetime.fromtimestamp(float(rng.uniform(start, end)), UTC).replace(microsecond=0),
            "width": int(rng.integers(*size_range)), "height": int(rng.integers(*size_range)),
            "ext": str(rng.choice(["jpg", "jpg", "png", "png", "mp4", "zip"])),
            "rating": str(rng.choice(["g", "s", "q", "e"])), "favs": int(rng.integers(0, 20)),
            "general": tags, "character": ["some_character"] if rng.random() < 0.5 else [],
        })
    return posts


def old_format(post):
    """Danbooru2017-2020 export: numbers as strings, tag objects, favourites as user ids."""
    tags = [{"id": str(100 + i), "name": name, "category": "0"} for i, name in enumerate(post["general"])]
    tags += [{"id": "9", "name": name, "category": "4"} for name in post["character"]]
    return {"id": str(post["id"]), "created_at": post["created"].strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
            "image_width": str(post["width"]), "image_height": str(post["height"]), "file_ext": post["ext"],
            "rating": post["rating"], "score": "3", "tags": tags, "pools": [],
            "favs": [str(1000 + i) for i in range(post["favs"])]}


def new_format(post):
    """Danbooru2021+ (API fields): integers, fav_count, tag strings, local time with an offset."""
    local = post["created"].astimezone(dt.timezone(dt.timedelta(hours=-4)))
    return {"id": post["id"], "created_at": local.isoformat(timespec="milliseconds"),
            "image_width": post["width"], "image_height": post["height"], "file_ext": post["ext"],
            "rating": post["rating"], "score": 3, "fav_count": post["favs"],
            "tag_string_general": " ".join(post["general"]), "tag_string_character": " ".join(post["character"]),
            "tag_string_copyright": "", "tag_string_artist": "someone", "tag_string_meta": ""}


def write_metadata(directory, posts, malformed=MALFORMED_LINES):
    """Half the posts in the old format, half in the new, each file with malformed lines mixed in."""
    os.makedirs(directory, exist_ok=True)
    half = len(posts) // 2
    for name, part, to_record in (("2018.json", posts[:half], old_format), ("2021.jsonl", posts[half:], new_format)):
        lines = [json.dumps(to_record(post)) for post in part]
        for index, bad in enumerate(malformed):
            lines.insert(min(len(lines), 7 * index + 3), bad)
        with open(os.path.join(directory, name), "w") as file:
            file.write("\n".join(lines) + "\n")
    return 2 * len(malformed)


def write_images(images_dir, posts, corrupt_ids=()):
    """Each post's image, where the releases put it, the post id drawn in its pixel values."""
    for post in posts:
        path = os.path.join(images_dir, f"{post['id'] % 1000:04d}", f"{post['id']}.{post['ext']}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if post["id"] in corrupt_ids:
            with open(path, "wb") as file:
                file.write(b"\x89PNG\r\n\x1a\n this is not an image")
            continue
        y, x = np.mgrid[0:post["height"], 0:post["width"]]
        pixels = np.stack([(x * 7 + post["id"]) % 256, (y * 5) % 256, np.full_like(x, post["id"] % 251)], -1)
        Image.fromarray(pixels.astype(np.uint8)).save(path, format="PNG")


def make_fake_dump(root, num_posts, seed=0, size_range=(200, 1200), images=False, corrupt_ids=()):
    posts = make_ground_truth(num_posts, seed, size_range)
    num_malformed = write_metadata(os.path.join(root, "metadata"), posts)
    if images:
        write_images(os.path.join(root, "images"), posts, corrupt_ids)
    return posts, num_malformed


def test_both_formats_parse_to_the_ground_truth(tmp_path):
    truth, num_malformed = make_fake_dump(tmp_path, 300)
    stats = {}
    posts = list(danbooru.iter_posts(str(tmp_path / "metadata"), stats))
    assert stats == {"records": 300 + num_malformed, "malformed": num_malformed, "duplicate_id": 0, "posts": 300}
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
