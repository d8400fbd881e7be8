"""Danbooru dumps laid out as released: Danbooru2018-2020's suffix-less JSON-lines shards of
string-typed posts, Danbooru2021's metadata folder (posts000000000000.json beside the tags, pools,
artists and notes tables), parquet, original/0NNN/<id>.<ext> and the 512px subset's
512px/0NNN/<id>.jpg; every filter's count and every drop checked against the ground truth, and the
warnings of runs that keep (almost) nothing.
"""
import datetime as dt
import json
import os

import numpy as np
import pytest
from PIL import Image

from experiments import prepare_danbooru as danbooru_tool
from stylegan_jax.prep import danbooru
from stylegan_jax.prep.runner import LIKELY_CAUSES, warnings_for
from helpers import make_ground_truth, new_format, old_format

# Fields of the released post records that the parser does not use, as the dumps have them.
OLD_EXTRA = {"uploader_id": "1", "source": "", "md5": "0" * 32, "is_note_locked": False, "parent_id": "0",
             "has_children": False, "approver_id": "0", "file_size": "1234", "is_pending": False,
             "is_flagged": False, "is_deleted": False, "is_banned": False, "pixiv_id": "0", "up_score": "3",
             "down_score": "0", "updated_at": "2019-01-01 00:00:00.0 UTC"}
NEW_EXTRA = {"uploader_id": 1, "source": "", "md5": "0" * 32, "tag_string": "", "parent_id": None,
             "has_children": False, "approver_id": None, "file_size": 1234, "up_score": 3, "down_score": 0,
             "is_pending": False, "is_flagged": False, "is_deleted": False, "is_banned": False, "tag_count": 3,
             "updated_at": "2021-06-01T00:00:00.000-04:00", "has_large": False, "bit_flags": 0}
# The other tables of a Danbooru2021 metadata folder: one record of each, as released.
OTHER_TABLES = {
    "tags000000000000.json": {"id": 470575, "name": "1girl", "post_count": 3000000, "category": 0,
                              "created_at": "2008-09-08T10:42:19.181-04:00", "is_deprecated": False, "words": ["1girl"]},
    "pools000000000000.json": {"id": 1, "name": "pool", "created_at": "2008-01-01T00:00:00.000-04:00",
                               "description": "", "is_active": True, "is_deleted": False, "post_ids": [1, 2],
                               "category": "series"},
    "artists000000000000.json": {"id": 1, "name": "someone", "created_at": "2008-01-01T00:00:00.000-04:00",
                                 "is_deleted": False, "group_name": "", "is_banned": False, "other_names": []},
    "notes000000000000.json": {"id": 1, "post_id": 2, "x": 10, "y": 10, "width": 50, "height": 20,
                               "is_active": True, "body": "text", "version": 1,
                               "created_at": "2008-01-01T00:00:00.000-04:00"},
}
EXTENSIONS = ["jpg", "png", "webp", "gif", "avif", "mp4", "zip"]


def ground_truth(num_posts, seed, ratings):
    """Posts with every released file kind and the given ratings; sizes 40..200 px."""
    truth = make_ground_truth(num_posts, seed=seed, size_range=(40, 200))
    rng = np.random.default_rng(seed)
    for post in truth:
        post["ext"] = str(rng.choice(EXTENSIONS))
        post["rating"] = str(rng.choice(ratings))
    return truth


def write_lines(path, records):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write("".join(json.dumps(record) + "\n" for record in records))


def write_images(root, truth, subset_ratings):
    """original/0NNN/<id>.<ext> for every still post; 512px/0NNN/<id>.jpg for those of subset_ratings."""
    for post in truth:
        bucket = f"{post['id'] % 1000:04d}"
        pixels = np.full((post["height"], post["width"], 3), post["id"] % 251, np.uint8)
        if post["ext"] in ("mp4", "zip"):
            path = os.path.join(root, "original", bucket, f"{post['id']}.{post['ext']}")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as file:
                file.write(b"not a still image")
            continue
        path = os.path.join(root, "original", bucket, f"{post['id']}.{post['ext']}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(pixels).save(path, format={"jpg": "JPEG"}.get(post["ext"], post["ext"].upper()))
        if post["rating"] in subset_ratings:  # 512px: downscaled to fit 512x512 (these already do), JPEG
            path = os.path.join(root, "512px", bucket, f"{post['id']}.jpg")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(pixels).save(path, format="JPEG")


def expected_filter_counts(truth, ratings, min_height, min_width):
    remaining, removed = list(truth), {}
    for reason, keep in [("not_a_still_image", lambda t: t["ext"] in danbooru.STILL_IMAGE_EXTENSIONS),
                         ("rating", lambda t: t["rating"] in ratings),
                         ("too_few_favs", lambda t: True), ("too_old", lambda t: True),
                         ("too_small", lambda t: t["height"] >= min_height and t["width"] >= min_width),
                         ("excluded_tag", lambda t: "lying" not in t["general"] and "on_side" not in t["general"])]:
        removed[reason] = sum(not keep(t) for t in remaining)
        remaining = [t for t in remaining if keep(t)]
    return remaining, removed


@pytest.fixture(scope="module")
def release_2019(tmp_path_factory):
    """danbooru2019/: metadata/2019000000000000 and ...01 (no suffix), old string-typed records;
    original/ only (ratings s, q, e: the pre-2022 meanings)."""
    root = tmp_path_factory.mktemp("danbooru2019")
    truth = ground_truth(60, seed=11, ratings=["s", "q", "e"])
    for index, part in enumerate((truth[:30], truth[30:])):
        write_lines(str(root / "metadata" / f"20190000000000{index:02d}"), [old_format(p) | OLD_EXTRA for p in part])
    write_images(str(root), truth, subset_ratings=())
    return root, truth


@pytest.fixture(scope="module")
def release_2021(tmp_path_factory):
    """danbooru2021/: metadata/posts00000000000{0,1}.json (typed records) beside the other tables;
    original/ and 512px/ (the g posts: the SFW subset)."""
    root = tmp_path_factory.mktemp("danbooru2021")
    truth = ground_truth(120, seed=12, ratings=["g", "s", "q", "e"])
    for index, part in enumerate((truth[:60], truth[60:])):
        write_lines(str(root / "metadata" / f"posts00000000000{index}.json"), [new_format(p) | NEW_EXTRA for p in part])
    for name, record in OTHER_TABLES.items():
        write_lines(str(root / "metadata" / name), [record, record | {"id": record["id"] + 1}])
    write_images(str(root), truth, subset_ratings=("g",))
    return root, truth


def test_2019_release_reads_suffixless_shards_and_filters_exactly(release_2019):
    root, truth = release_2019
    stats = {}
    post_filter = danbooru.PostFilter(min_height=64, min_width=32, ratings=("s",), exclude_tags=("lying", "on_side"))
    kept, removed = danbooru.select_posts(str(root / "metadata"), post_filter, stats)
    assert stats == {"records": 60, "malformed": 0, "duplicate_id": 0, "posts": 60, "skipped_files": []}
    remaining, expected = expected_filter_counts(truth, ("s",), 64, 32)
    assert removed == expected and all(expected[r] > 0 for r in ("not_a_still_image", "rating", "too_small"))
    assert [p.id for p in kept] == sorted(t["id"] for t in remaining)
    by_id = {t["id"]: t for t in truth}
    assert all(p.fav_count == by_id[p.id]["favs"] and p.file_ext == by_id[p.id]["ext"] for p in kept)


def test_2021_release_folder_reads_only_the_posts_and_names_the_rest(release_2021):
    root, truth = release_2021
    stats = {}
    kept, removed = danbooru.select_posts(str(root / "metadata"), danbooru.PostFilter(
        min_height=64, min_width=32, ratings=("g",), exclude_tags=("lying", "on_side")), stats)
    assert stats == {"records": 120, "malformed": 0, "duplicate_id": 0, "posts": 120,
                     "skipped_files": sorted(OTHER_TABLES)}
    remaining, expected = expected_filter_counts(truth, ("g",), 64, 32)
    assert removed == expected
    assert [p.id for p in kept] == sorted(t["id"] for t in remaining)
    assert any(p.file_ext == "avif" for p in kept)  # avif is a still image


def test_parquet_posts_beside_other_tables(tmp_path, release_2021):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    _, truth = release_2021
    pq.write_table(pa.Table.from_pylist([new_format(p) | NEW_EXTRA for p in truth]), tmp_path / "posts.parquet")
    pq.write_table(pa.Table.from_pylist([OTHER_TABLES["tags000000000000.json"]]), tmp_path / "tags.parquet")
    stats = {}
    posts = list(danbooru.iter_posts(str(tmp_path), stats))
    assert stats["skipped_files"] == ["tags.parquet"] and len(posts) == 120
    assert sorted(p.id for p in posts) == sorted(t["id"] for t in truth)


@pytest.mark.parametrize("images, layout", [("512px", "auto"), ("512px", "512px"), ("original", "auto")])
def test_image_layouts_find_every_kept_posts_image(release_2021, tmp_path, images, layout):
    root, truth = release_2021
    report = danbooru_tool.prepare(str(root / "metadata"), str(root / images), str(tmp_path / "out"),
                                   shape=(64, 32), crop="centre", ratings=("g",), max_age_years=-1,
                                   vocabulary="none", layout=layout)
    remaining, _ = expected_filter_counts(truth, ("g",), 64, 32)
    assert report["settings"]["layout"] == ("512px" if images == "512px" else "original")
    assert report["posts_after_filters"] == len(remaining) > 0
    assert {t["ext"] for t in remaining} - {"jpg"}  # others than .jpg in the metadata, all .jpg in 512px/
    assert report["kept_examples"] == len(remaining) and report["dropped"] == {}
    assert report["kept_fraction"] == 1.0 and report["warnings"] == []


def test_the_wrong_layout_drops_what_is_not_jpg(release_2021, tmp_path):
    root, truth = release_2021
    report = danbooru_tool.prepare(str(root / "metadata"), str(root / "512px"), str(tmp_path / "out"),
                                   shape=(64, 32), crop="centre", ratings=("g",), max_age_years=-1,
                                   vocabulary="none", layout="original")
    remaining, _ = expected_filter_counts(truth, ("g",), 64, 32)
    jpg = sum(t["ext"] == "jpg" for t in remaining)
    assert report["dropped"] == {"image_missing": len(remaining) - jpg} and report["kept_examples"] == jpg
    assert report["kept_fraction"] == round(jpg / len(remaining), 4)


def test_images_not_found_warns_with_the_likely_cause(release_2021, tmp_path, capsys):
    root, truth = release_2021
    report = danbooru_tool.prepare(str(root / "metadata"), str(root), str(tmp_path / "out"),  # not the image root
                                   shape=(64, 32), crop="centre", ratings=("g",), max_age_years=-1, vocabulary="none")
    remaining, _ = expected_filter_counts(truth, ("g",), 64, 32)
    assert report["dropped"] == {"image_missing": len(remaining)} and report["kept_fraction"] == 0.0
    n = len(remaining)
    assert report["warnings"] == [f"kept nothing of {n} items",
                                  f"{n} of {n} items (100%) dropped as image_missing: " + LIKELY_CAUSES["image_missing"]]
    assert "check --images and --layout" in report["warnings"][1]
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("warning: ")] == [f"warning: {w}" for w in report["warnings"]]


def test_a_run_that_keeps_nothing_warns(release_2019, tmp_path, capsys):
    root, _ = release_2019
    # The pre-2022 dump has no g posts: the 2022+ default keeps none of them.
    report = danbooru_tool.prepare(str(root / "metadata"), str(root / "original"), str(tmp_path / "out"),
                                   shape=(64, 32), crop="centre", max_age_years=-1, vocabulary="none")
    assert report["settings"]["filter"]["ratings"] == ["g"]
    assert report["items"] == 0 and report["kept_examples"] == 0 and report["kept_fraction"] == 0.0
    assert report["warnings"][0].startswith("the rating filter removed ") and "--ratings" in report["warnings"][0]
    assert report["warnings"][1].startswith("no input to prepare")
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("warning: ")] == [f"warning: {w}" for w in report["warnings"]]


def test_warnings_name_the_dominant_reason_only_above_90_percent():
    summary = {"items": 100, "kept_examples": 9, "dropped": {"no_face_detected": 91}, "counts": {}}
    [warning] = warnings_for(summary)
    assert warning.startswith("91 of 100 items (91%) dropped as no_face_detected: the detector found no face")
    assert warnings_for(summary | {"kept_examples": 10, "dropped": {"no_face_detected": 90}}) == []
    assert warnings_for({"items": 3, "kept_examples": 0, "dropped": {"unreadable_image": 2, "too_small": 1},
                         "counts": {}}) == ["kept nothing of 3 items"]


def test_ratings_before_and_after_2022_parse_alike():
    post = new_format(make_ground_truth(1)[0]) | {"rating": "G"}
    assert danbooru.parse_post(post).rating == "g"
    created = danbooru.parse_post(old_format(make_ground_truth(1)[0])).created_at
    assert created.tzinfo == dt.timezone.utc
