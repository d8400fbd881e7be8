"""Danbooru20xx metadata: parsing both release formats, and the curation filters.

Formats (one post per record):
- older JSON exports (Danbooru2017-2020, one JSON object a line, many shard files in a folder,
  with or without a .json suffix): numbers often as strings ("id": "123"), "created_at":
  "2017-11-10 05:08:23.04158 UTC", "favs": a list of user ids, "tags": [{"id": "470575",
  "name": "1girl", "category": "0"}, ...];
- newer ones (Danbooru2021+, the site API's fields, as JSON lines (posts000000000000.json, ...)
  or parquet): "fav_count", "created_at": "2020-07-28T18:05:00.155-04:00", "tag_string_general" /
  "_character" / "_copyright" / "_artist" / "_meta" (space-separated tags). The metadata folder
  also holds other tables (tags, pools, artists, notes, ...): a folder's files are read as posts
  only when their first record has the post fields (POST_FIELDS); the others are skipped and named.
Images, as the releases ship them (0NNN = id % 1000 as 4 digits):
- original/0NNN/<id>.<file_ext>;
- the 512px SFW subset, 512px/0NNN/<id>.jpg: every image re-encoded as JPEG, whatever file_ext.

A malformed record (bad JSON, a missing or non-numeric field) is skipped and counted, never fatal.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import os
from typing import Iterator

# Danbooru's tag category numbers.
TAG_CATEGORIES = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta"}
# Since 2022: g = general (safe for work), s = sensitive (not safe for work), q = questionable,
# e = explicit. Before 2022 (Danbooru2017-2021 as released): s = safe, q, e.
RATINGS = ("g", "s", "q", "e")
STILL_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "avif")
# Fields every post record has (both formats), by which a folder's post files are recognised.
POST_FIELDS = ("id", "file_ext", "rating", "image_width", "image_height")
# Files in a metadata folder that are never metadata: skipped without being opened.
NOT_METADATA_EXTENSIONS = (".txt", ".md", ".html", ".csv", ".tsv", ".gz", ".xz", ".zst", ".tar", ".zip", ".torrent",
                           ".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif", ".py", ".sh")
IMAGE_LAYOUTS = ("auto", "original", "512px")
SNIFF_LINES = 10  # lines is_posts_file looks at (a shard may start with a malformed record)


class MalformedPost(ValueError):
    """A metadata record that cannot be turned into a Post."""


@dataclasses.dataclass(frozen=True)
class Post:
    id: int
    created_at: dt.datetime  # timezone-aware, UTC
    image_width: int
    image_height: int
    file_ext: str
    rating: str
    score: int
    fav_count: int
    tags: dict  # category name -> tuple of tag names

    @property
    def all_tags(self) -> frozenset:
        return frozenset(tag for names in self.tags.values() for tag in names)

    @property
    def key(self) -> str:
        return str(self.id)


def resolve_layout(images_dir: str, layout: str = "auto") -> str:
    """The image layout: "original" or "512px" as given, or for "auto" "512px" when the folder
    is named 512px (as released), else "original"."""
    if layout not in IMAGE_LAYOUTS:
        raise ValueError(f"unknown image layout {layout!r}: choose one of {', '.join(IMAGE_LAYOUTS)}")
    if layout != "auto":
        return layout
    return "512px" if os.path.basename(os.path.normpath(images_dir)) == "512px" else "original"


def image_path(images_dir: str, post: Post, layout: str = "original") -> str:
    """Where the releases put a post's image: <images>/<id % 1000 as 4 digits>/<id>.<ext>, ext
    the post's file_ext in the original layout, jpg in the 512px subset."""
    extension = "jpg" if resolve_layout(images_dir, layout) == "512px" else post.file_ext
    return os.path.join(images_dir, f"{post.id % 1000:04d}", f"{post.id}.{extension}")


def parse_datetime(value) -> dt.datetime:
    """Danbooru timestamps of both formats (and parquet timestamps) as UTC-aware datetimes."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(" UTC"):
            text = text[:-4] + "+00:00"
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError as error:
            raise MalformedPost(f"bad created_at {value!r}") from error
    else:
        raise MalformedPost(f"bad created_at {value!r}")
    if moment.tzinfo is None:  # naive timestamps in the dumps are UTC
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def _integer(record: dict, name: str, default=None) -> int:
    value = record.get(name, default)
    if value is None or isinstance(value, bool):
        raise MalformedPost(f"missing or bad {name!r}")
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise MalformedPost(f"bad {name} {value!r}") from error


def _tags(record: dict) -> dict:
    tags = {}
    if isinstance(record.get("tags"), list):  # older exports: list of {id, name, category}
        for tag in record["tags"]:
            if not isinstance(tag, dict) or "name" not in tag:
                raise MalformedPost(f"bad tag {tag!r}")
            category = TAG_CATEGORIES.get(_integer(tag, "category", 0), "general")
            tags.setdefault(category, []).append(str(tag["name"]))
    else:
        for category in TAG_CATEGORIES.values():
            value = record.get(f"tag_string_{category}")
            if value:
                tags[category] = str(value).split()
        if not tags and record.get("tag_string"):  # uncategorised fallback
            tags["general"] = str(record["tag_string"]).split()
    return {category: tuple(names) for category, names in tags.items()}


def parse_post(record) -> Post:
    """One metadata record (a dict of either format) as a Post; raises MalformedPost."""
    if not isinstance(record, dict):
        raise MalformedPost(f"record is a {type(record).__name__}, not an object")
    if "fav_count" in record and record["fav_count"] is not None:
        fav_count = _integer(record, "fav_count")
    elif isinstance(record.get("favs"), list):
        fav_count = len(record["favs"])
    else:
        raise MalformedPost("neither fav_count nor a favs list")
    file_ext = str(record.get("file_ext") or "").lower()
    rating = str(record.get("rating") or "").lower()
    if not file_ext or not rating:
        raise MalformedPost("missing file_ext or rating")
    return Post(id=_integer(record, "id"), created_at=parse_datetime(record.get("created_at")),
                image_width=_integer(record, "image_width"), image_height=_integer(record, "image_height"),
                file_ext=file_ext, rating=rating, score=_integer(record, "score", 0), fav_count=fav_count,
                tags=_tags(record))


def is_posts_file(path: str) -> bool:
    """Whether a file holds post records: one of its first SNIFF_LINES non-empty lines (JSON lines)
    is an object with every POST_FIELDS name, or its columns (parquet) have them all."""
    if path.lower().endswith(".parquet"):
        try:
            import pyarrow.parquet as parquet  # optional dependency
        except ImportError as error:
            raise ImportError(f"reading {path!r} needs pyarrow: pip install pyarrow") from error
        try:
            names = set(parquet.read_schema(path).names)
        except Exception:  # pyarrow raises its own error types for files that are not parquet
            return False
        return all(field in names for field in POST_FIELDS)
    try:
        with open(path, encoding="utf-8") as file:
            lines = (line for line in file if line.strip())
            for line in itertools.islice(lines, SNIFF_LINES):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and all(field in record for field in POST_FIELDS):
                    return True
    except (UnicodeDecodeError, OSError):
        return False
    return False


def metadata_files(path: str, skipped: list | None = None) -> list[str]:
    """The metadata file itself, or every posts file in a folder (recursively, sorted; see
    is_posts_file); the folder's other files go, relative to it, into `skipped`."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"metadata {path!r} not found: give a posts JSON-lines or .parquet file, "
                                "or the release's metadata folder")
    found, others = [], []
    for root, _, names in os.walk(path):
        for name in names:
            file = os.path.join(root, name)
            is_posts = not name.startswith(".") and not name.lower().endswith(NOT_METADATA_EXTENSIONS) \
                and is_posts_file(file)
            (found if is_posts else others).append(file)
    if skipped is not None:
        skipped.extend(sorted(os.path.relpath(file, path) for file in others))
    if not found:
        raise FileNotFoundError(f"no posts metadata under {path!r} (JSON lines or parquet whose records have "
                                f"{', '.join(POST_FIELDS)}); skipped: {', '.join(sorted(others)[:5]) or 'no files'}")
    return sorted(found)


def _records(path: str) -> Iterator:
    """Raw records of one file; a line that is not JSON yields the MalformedPost to count."""
    if path.lower().endswith(".parquet"):
        try:
            import pyarrow.parquet as parquet  # optional dependency
        except ImportError as error:
            raise ImportError(f"reading {path!r} needs pyarrow: pip install pyarrow") from error
        for batch in parquet.ParquetFile(path).iter_batches(batch_size=4096):
            yield from batch.to_pylist()
        return
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                yield MalformedPost(f"not JSON: {error}")


def iter_posts(path: str, stats: dict) -> Iterator[Post]:
    """Every well-formed post under path, in file order, streamed (a full dump has millions).

    stats gets "records", "malformed", "duplicate_id" (later copies of an id are skipped) and
    "posts" (the unique well-formed ones) counts, and "skipped_files": a folder's files that are
    not posts tables."""
    seen = set()
    for name in ("records", "malformed", "duplicate_id", "posts"):
        stats.setdefault(name, 0)
    skipped = []
    files = metadata_files(path, skipped)
    stats["skipped_files"] = skipped
    for metadata_file in files:
        for record in _records(metadata_file):
            stats["records"] += 1
            try:
                if isinstance(record, MalformedPost):
                    raise record
                post = parse_post(record)
            except MalformedPost:
                stats["malformed"] += 1
                continue
            if post.id in seen:
                stats["duplicate_id"] += 1
                continue
            seen.add(post.id)
            stats["posts"] += 1
            yield post


@dataclasses.dataclass(frozen=True)
class PostFilter:
    """Curation by metadata (favourites, age, size, rating, tags): what a post needs to be kept.

    min_height/min_width: the whole image must hold the target shape (else every crop would be
    upscaled); whether a face crop fits is checked later, per face. max_age_years: keep posts
    created at most that long (years of 365.2425 days) before reference_date (None: the newest
    post's date, so a rerun on the same metadata keeps the same posts whatever day it runs)."""
    min_favs: int = 0
    max_age_years: float | None = None
    reference_date: dt.datetime | None = None
    min_height: int = 0
    min_width: int = 0
    ratings: tuple = RATINGS
    exclude_tags: tuple = ()
    extensions: tuple = STILL_IMAGE_EXTENSIONS

    def oldest_date(self, newest_post_date: dt.datetime | None) -> dt.datetime | None:
        """The earliest creation date kept (None: no age filter)."""
        reference = self.reference_date or newest_post_date
        if self.max_age_years is None or reference is None:
            return None
        return parse_datetime(reference) - dt.timedelta(days=365.2425 * self.max_age_years)

    def checks(self, oldest: dt.datetime | None):
        """(reason, keep-predicate) pairs in order of application."""
        exclude = frozenset(self.exclude_tags)
        return [
            ("not_a_still_image", lambda p: p.file_ext in self.extensions),
            ("rating", lambda p: p.rating in self.ratings),
            ("too_few_favs", lambda p: p.fav_count >= self.min_favs),
            ("too_old", lambda p: oldest is None or p.created_at >= oldest),
            ("too_small", lambda p: p.image_height >= self.min_height and p.image_width >= self.min_width),
            ("excluded_tag", lambda p: not (exclude & p.all_tags)),
        ]

    def apply(self, posts, newest_post_date: dt.datetime | None = None) -> tuple[list[Post], dict]:
        """(kept posts sorted by id, {reason: posts removed by it}), the filters applied in order:
        a post is counted only under the first filter that removes it. posts may be a stream;
        newest_post_date is needed for the age filter when reference_date is None."""
        if self.max_age_years is not None and self.reference_date is None and newest_post_date is None:
            posts = list(posts)
            newest_post_date = max((post.created_at for post in posts), default=None)
        checks = self.checks(self.oldest_date(newest_post_date))
        removed = {reason: 0 for reason, _ in checks}
        kept = []
        for post in posts:
            reason = next((reason for reason, keep in checks if not keep(post)), None)
            if reason is None:
                kept.append(post)
            else:
                removed[reason] += 1
        return sorted(kept, key=lambda post: post.id), removed


def select_posts(path: str, post_filter: PostFilter, stats: dict) -> tuple[list[Post], dict]:
    """Streams the metadata under path through post_filter: (kept posts sorted by id, removed
    counts). When the age filter needs the newest post's date, a first pass finds it."""
    newest = None
    if post_filter.max_age_years is not None and post_filter.reference_date is None:
        newest = max((post.created_at for post in iter_posts(path, {})), default=None)
        stats["newest_post_date"] = str(newest)
    return post_filter.apply(iter_posts(path, stats), newest)
