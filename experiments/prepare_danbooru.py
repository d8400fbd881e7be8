r"""Prepare a Danbooru20xx dump as a training set of face crops (or centre crops).

  python -m experiments.prepare_danbooru --metadata=danbooru2018/metadata --images=danbooru2018/original \
      --out=data/danbooru_faces --detector=opencv --cascade=lbpcascade_animeface.xml

Curates by metadata first (favourites, age, size, rating, tags), then crops
each kept post's face plus the same height below it at the target aspect (512x256 = H x W by
default), labels it from its tags (--vocabulary) and writes a prepared dataset (PreparedWriter) that
make_pipeline(source=<out>) reads. Originals are only read. A killed run continues where it stopped
when rerun with the same arguments. The report (printed, and in <out>/dataset.json) counts the
posts each filter removed, the images dropped per reason, rejected faces and tag/label counts.
"""
from __future__ import annotations

import argparse
import datetime as dt

from stylegan_jax.data.prepared import PreparedWriter
from stylegan_jax.prep import crops, danbooru
from stylegan_jax.prep.images import centre_crop_box, crop_resize, load_rgb
from stylegan_jax.prep.runner import Outcome, finish, run_command, run_preparation
from stylegan_jax.prep.tags import TagVocabulary


def prepare_danbooru(metadata: str, images: str, out: str, *, shape=(512, 256),
                     post_filter: danbooru.PostFilter = danbooru.PostFilter(),
                     detector: crops.FaceDetector | None = None,
                     crop_settings: crops.CropSettings = crops.CropSettings(),
                     vocabulary: TagVocabulary | None = None, shard_size: int = 1000,
                     limit: int | None = None) -> dict:
    """Filters the posts of `metadata`, crops their images from `images` into the prepared dataset
    `out` and returns the report. detector=None takes the largest centred crop instead of faces."""
    shape = tuple(int(s) for s in shape)
    metadata_stats = {}
    kept_posts, removed = danbooru.select_posts(metadata, post_filter, metadata_stats)
    if limit is not None:
        kept_posts = kept_posts[:limit]
    # Everything that decides the output, so a resume with other settings is refused (--limit is
    # not: a larger limit continues a trial run); the newest post's date sets the age cutoff.
    settings = {"shape": list(shape), "filter": _jsonable(post_filter),
                "newest_post_date": metadata_stats.get("newest_post_date"),
                "detector": type(detector).__name__ if detector else "centre_crop",
                "crop": _jsonable(crop_settings) if detector else None,
                "vocabulary": vocabulary.attributes if vocabulary else None}

    def process(post: danbooru.Post) -> Outcome:
        image = load_rgb(danbooru.image_path(images, post))
        if detector is None:
            pixels = crop_resize(image, centre_crop_box(image.size, shape), shape)
            examples, dropped, counts = [(post.key, pixels)], None, {}
        else:
            examples, dropped, counts = crops.crop_faces(image, post.key, detector, shape, crop_settings)
        label = vocabulary.encode(post.all_tags) if vocabulary else None
        if vocabulary and examples:  # tag and label counts are of the examples kept
            for name, count in vocabulary.counts(post.all_tags).items():
                counts[name] = counts.get(name, 0) + count * len(examples)
        return Outcome([(key, pixels, label) for key, pixels in examples], dropped, counts)

    writer = PreparedWriter(out, shape, vocabulary.spec if vocabulary else None, shard_size=shard_size)
    summary = run_preparation(((post.key, post) for post in kept_posts), process, writer, settings=settings,
                              total=len(kept_posts), desc="danbooru")
    return finish(writer, summary, tool="prepare_danbooru", settings=settings, metadata=metadata_stats,
                  filters_removed=removed, posts_after_filters=len(kept_posts))


def _jsonable(dataclass_value) -> dict:
    return {k: (str(v) if isinstance(v, dt.datetime) else list(v) if isinstance(v, tuple) else v)
            for k, v in vars(dataclass_value).items()}


def parse_shape(text: str) -> tuple[int, int]:
    """"512x256" -> (512, 256) (height x width)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad shape {text!r}: write HEIGHTxWIDTH, e.g. 512x256") from None
    return height, width


def _list(text: str) -> tuple:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def add_crop_flags(parser: argparse.ArgumentParser, default_margin: float) -> None:
    """Flags shared with prepare_faces: target shape, face rejection thresholds, output sharding."""
    parser.add_argument("--out", required=True, help="output folder (a prepared dataset; rerun to resume)")
    parser.add_argument("--shape", type=parse_shape, default=(512, 256), help="target HEIGHTxWIDTH")
    parser.add_argument("--min_confidence", type=float, default=0.0, help="drop faces the detector is less sure of")
    parser.add_argument("--min_face_size", type=float, default=None,
                        help="drop faces smaller than this many pixels (default: half the target width, "
                             "so crops are upscaled at most 2x)")
    parser.add_argument("--margin", type=float, default=default_margin,
                        help="grow the face box by this fraction of its size on every side")
    parser.add_argument("--max_faces", type=int, default=1, help="crops per image, most confident faces first")
    parser.add_argument("--shard_size", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=None, help="only the first N inputs (to try settings)")


def crop_settings_from(args) -> crops.CropSettings:
    min_face_size = args.shape[1] / 2 if args.min_face_size is None else args.min_face_size
    return crops.CropSettings(min_confidence=args.min_confidence, min_face_size=min_face_size,
                              margin=args.margin, max_faces=args.max_faces)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadata", required=True, help="metadata file (.json lines / .parquet) or folder of them")
    parser.add_argument("--images", required=True, help="image root: <images>/<id %% 1000 as 4 digits>/<id>.<ext>")
    add_crop_flags(parser, default_margin=0.2)
    parser.add_argument("--min_favs", type=int, default=0, help="drop posts with fewer favourites")
    parser.add_argument("--max_age_years", type=float, default=6.0, help="drop posts older than this (<0: keep all)")
    parser.add_argument("--reference_date", default=None,
                        help="date the age is measured from, ISO (default: the newest post's date)")
    parser.add_argument("--min_size", type=parse_shape, default=None,
                        help="drop images smaller than HEIGHTxWIDTH (default: the target shape)")
    parser.add_argument("--ratings", type=_list, default=("g", "s"), help="ratings to keep, of g,s,q,e")
    parser.add_argument("--exclude_tags", type=_list, default=("lying", "on_side"), help="drop posts with any of these")
    parser.add_argument("--crop", choices=("face", "centre"), default="face")
    parser.add_argument("--detector", choices=("animeface", "opencv", "boxes"), default="animeface")
    parser.add_argument("--cascade", default=None, help="OpenCV cascade XML for --detector=opencv "
                        "(e.g. nagadomi's lbpcascade_animeface.xml)")
    parser.add_argument("--boxes", default=None, help="JSON {post id: [[x, y, w, h, confidence], ...]} "
                        "for --detector=boxes (faces found by another tool)")
    parser.add_argument("--vocabulary", default="default", help="tag vocabulary JSON, 'default' or 'none'")
    args = parser.parse_args(argv)
    unknown = [rating for rating in args.ratings if rating not in danbooru.RATINGS]
    if unknown:
        parser.error(f"unknown ratings {unknown}: choose among {', '.join(danbooru.RATINGS)}")
    min_height, min_width = args.min_size or args.shape
    post_filter = danbooru.PostFilter(
        min_favs=args.min_favs, max_age_years=None if args.max_age_years < 0 else args.max_age_years,
        reference_date=danbooru.parse_datetime(args.reference_date) if args.reference_date else None,
        min_height=min_height, min_width=min_width, ratings=args.ratings, exclude_tags=args.exclude_tags)
    detector = None  # --crop=centre
    if args.crop == "face":
        detector = crops.make_detector(args.detector, cascade=args.cascade, boxes=args.boxes)
    vocabulary = None if args.vocabulary == "none" else TagVocabulary.load(args.vocabulary)
    return prepare_danbooru(args.metadata, args.images, args.out, shape=args.shape, post_filter=post_filter,
                            detector=detector, crop_settings=crop_settings_from(args), vocabulary=vocabulary,
                            shard_size=args.shard_size, limit=args.limit)


if __name__ == "__main__":
    run_command(main)
