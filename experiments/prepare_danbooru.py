r"""Prepare a Danbooru20xx dump as a training set of face crops (or centre crops).

  python -m experiments.prepare_danbooru --metadata=danbooru2018/metadata --images=danbooru2018/original \
      --out=data/danbooru_faces
  python -m experiments.prepare_danbooru --metadata=danbooru2021/metadata --images=danbooru2021/512px \
      --out=data/danbooru_faces --ratings=g


Curates by metadata first (favourites, age, size, rating, tags), then crops
each kept post's face plus the same height below it at the target aspect (512x256 = H x W by
default), labels it from its tags (--vocabulary) and writes a prepared dataset (PreparedWriter) that
make_pipeline(source=<out>) reads. Originals are only read. A killed run continues where it stopped
when rerun with the same arguments. The report (printed, and in <out>/dataset.json) counts the
posts each filter removed, the images dropped per reason, rejected faces and tag/label counts.
"""
from __future__ import annotations

import datetime as dt

from absl import app, flags

from stylegan_jax.data.prepared import PreparedWriter
from stylegan_jax.prep import crops, danbooru
from stylegan_jax.prep.images import centre_crop_box, crop_resize, load_rgb
from stylegan_jax.prep.runner import DOMINANT_FRACTION, Outcome, finish, run_preparation
from stylegan_jax.prep.tags import TagVocabulary
from stylegan_jax.utils import exit_with_error

FLAGS = flags.FLAGS


def prepare_danbooru(metadata: str, images: str, out: str, *, shape=(512, 256),
                     post_filter: danbooru.PostFilter = danbooru.PostFilter(),
                     detector: crops.FaceDetector | None = None,
                     crop_settings: crops.CropSettings = crops.CropSettings(),
                     checker: crops.FaceDetector | None = None,
                     vocabulary: TagVocabulary | None = None, shard_size: int = 1000,
                     limit: int | None = None, layout: str = "auto") -> dict:
    """Filters the posts of `metadata`, crops their images from `images` into the prepared dataset
    `out` and returns the report. detector=None takes the largest centred crop instead of faces;
    checker: the crop check's detector (crops.crop_faces). layout: danbooru.IMAGE_LAYOUTS."""
    shape = tuple(int(s) for s in shape)
    metadata_stats = {}
    layout = danbooru.resolve_layout(images, layout)
    kept_posts, removed = danbooru.select_posts(metadata, post_filter, metadata_stats)
    if limit is not None:
        kept_posts = kept_posts[:limit]
    # Everything that decides the output, so a resume with other settings is refused (--limit is
    # not: a larger limit continues a trial run); the newest post's date sets the age cutoff.
    settings = {"shape": list(shape), "filter": _jsonable(post_filter),
                "newest_post_date": metadata_stats.get("newest_post_date"),
                "detector": type(detector).__name__ if detector else "centre_crop",
                "crop": _jsonable(crop_settings) if detector else None,
                "vocabulary": vocabulary.attributes if vocabulary else None, "layout": layout}

    def process(post: danbooru.Post) -> Outcome:
        image = load_rgb(danbooru.image_path(images, post, layout))
        if detector is None:
            pixels = crop_resize(image, centre_crop_box(image.size, shape), shape)
            examples, dropped, counts = [(post.key, pixels)], None, {}
        else:
            examples, dropped, counts = crops.crop_faces(image, post.key, detector, shape, crop_settings, checker)
        label = vocabulary.encode(post.all_tags) if vocabulary else None
        if vocabulary and examples:  # tag and label counts are of the examples kept
            for name, count in vocabulary.counts(post.all_tags).items():
                counts[name] = counts.get(name, 0) + count * len(examples)
        return Outcome([(key, pixels, label) for key, pixels in examples], dropped, counts)

    writer = PreparedWriter(out, shape, vocabulary.spec if vocabulary else None, shard_size=shard_size)
    summary = run_preparation(((post.key, post) for post in kept_posts), process, writer, settings=settings,
                              total=len(kept_posts), desc="danbooru")
    return finish(writer, summary, tool="prepare_danbooru", settings=settings, metadata=metadata_stats,
                  filters_removed=removed, posts_after_filters=len(kept_posts),
                  warnings=filter_warnings(metadata_stats, removed))


def filter_warnings(metadata_stats: dict, removed: dict) -> list[str]:
    """Warnings for metadata that gave no post, or a filter that removed more than DOMINANT_FRACTION
    of the posts that reached it (the filters apply in order)."""
    posts = metadata_stats.get("posts", 0)
    if posts == 0:
        return [f"the metadata gave no post ({metadata_stats.get('malformed', 0)} malformed records): is --metadata "
                "the release's posts files?"]
    warnings, reaching = [], posts
    for reason, count in removed.items():
        if reaching and count > DOMINANT_FRACTION * reaching:
            warnings.append(f"the {reason} filter removed {count} of the {reaching} posts it saw "
                            f"({count / reaching:.0%}): check {FILTER_FLAGS[reason]}")
        reaching -= count
    return warnings


# The flag behind each metadata filter, for the warnings.
FILTER_FLAGS = {"not_a_still_image": "the metadata (videos and archives are never kept)",
                "rating": "--ratings (before 2022 the dumps rate s = safe, and have no g)",
                "too_few_favs": "--min_favs", "too_old": "--max_age_years, --reference_date",
                "too_small": "--min_size, --shape", "excluded_tag": "--exclude_tags"}


def _jsonable(dataclass_value) -> dict:
    return {k: (str(v) if isinstance(v, dt.datetime) else list(v) if isinstance(v, tuple) else v)
            for k, v in vars(dataclass_value).items()}


def parse_shape(text: str) -> tuple[int, int]:
    """"512x256" -> (512, 256) (height x width)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"bad shape {text!r}: write HEIGHTxWIDTH, e.g. 512x256") from None
    return height, width


class _ShapeParser(flags.ArgumentParser):
    """Parses a HEIGHTxWIDTH flag to (height, width); absl reports its ValueError as a flag error."""
    syntactic_help = "HEIGHTxWIDTH, e.g. 512x256"

    def parse(self, argument):
        return parse_shape(argument)

    def flag_type(self):
        return "HEIGHTxWIDTH"


class _ShapeSerializer(flags.ArgumentSerializer):
    def serialize(self, value):
        return f"{value[0]}x{value[1]}"


def define_shape(name: str, default: str | None, help_string: str) -> None:
    """Defines `--name=HEIGHTxWIDTH`, whose value is (height, width); default: "HxW" or None."""
    flags.DEFINE(_ShapeParser(), name, default, help_string, serializer=_ShapeSerializer())


def define_crop_flags() -> None:
    """Flags shared with prepare_faces: output folder and sharding, target shape, face rejection
    thresholds, --limit."""
    flags.DEFINE_string("out", None, "output folder (a prepared dataset; rerun to resume)", required=True)
    define_shape("shape", "512x256", "target HEIGHTxWIDTH")
    flags.DEFINE_float("min_confidence", 0.0, "drop faces the detector is less sure of")
    flags.DEFINE_float("min_face_size", None,
                       "drop faces smaller than this many pixels (default: half the target width, "
                       "so crops are upscaled at most 2x)")
    flags.DEFINE_float("margin", None, "grow the face box by this fraction of its size on every side "
                       "(default per detector: " + ", ".join(f"{k} {v}" for k, v in crops.DEFAULT_MARGINS.items())
                       + ", which keep the whole head)")
    flags.DEFINE_integer("max_faces", 1, "crops per image, most confident faces first")
    flags.DEFINE_float("check_crops", 0.0, "> 0: run the animeface detector again on each crop's face square at "
                       "the target size and drop the face (no_character_in_crop) unless it finds a face at least "
                       "this sure (e.g. 0.8); 0: off")
    flags.DEFINE_integer("shard_size", 1000, "examples per shard file")
    flags.DEFINE_integer("limit", None, "only the first N inputs (to try settings)")


def crop_settings(shape, min_confidence: float, min_face_size: float | None, margin: float | None,
                  max_faces: int, detector: str = "animeface", check_crops: float = 0.0) -> crops.CropSettings:
    """The crop flags' values as CropSettings; min_face_size None: half the target width; margin
    None: the detector's default (crops.DEFAULT_MARGINS)."""
    min_face_size = shape[1] / 2 if min_face_size is None else min_face_size
    margin = crops.DEFAULT_MARGINS[detector] if margin is None else margin
    return crops.CropSettings(min_confidence=min_confidence, min_face_size=min_face_size,
                              margin=margin, max_faces=max_faces, check_crop_min_confidence=check_crops)


def make_detectors(detector: str, cascade: str | None, boxes: str | None, check_crops: float):
    """(the face detector named by the flags, the crop check's detector or None)."""
    face_detector = crops.make_detector(detector, cascade=cascade, boxes=boxes)
    checker = None
    if check_crops > 0:
        checker = face_detector if isinstance(face_detector, crops.AnimeFaceDetector) else crops.AnimeFaceDetector()
    return face_detector, checker


def prepare(metadata: str, images: str, out: str, *, shape=(512, 256), min_confidence: float = 0.0,
            min_face_size: float | None = None, margin: float | None = None, max_faces: int = 1,
            check_crops: float = 0.0, shard_size: int = 1000, limit: int | None = None, min_favs: int = 0,
            max_age_years: float = 6.0, reference_date: str | None = None, min_size=None,
            ratings=("g",), exclude_tags=("lying", "on_side"), crop: str = "face",
            detector: str = "animeface", cascade: str | None = None, boxes: str | None = None,
            vocabulary: str = "default", layout: str = "auto") -> dict:
    """The command with its flags' values (same names and defaults): builds the post filter,
    detector, crop settings and vocabulary they describe, runs prepare_danbooru, returns the report."""
    min_height, min_width = min_size or shape
    post_filter = danbooru.PostFilter(
        min_favs=min_favs, max_age_years=None if max_age_years < 0 else max_age_years,
        reference_date=danbooru.parse_datetime(reference_date) if reference_date else None,
        min_height=min_height, min_width=min_width, ratings=tuple(ratings), exclude_tags=tuple(exclude_tags))
    face_detector = checker = None  # crop="centre"
    if crop == "face":
        face_detector, checker = make_detectors(detector, cascade, boxes, check_crops)
    settings = crop_settings(shape, min_confidence, min_face_size, margin, max_faces, detector, check_crops)
    return prepare_danbooru(metadata, images, out, shape=shape, post_filter=post_filter, detector=face_detector,
                            crop_settings=settings, checker=checker,
                            vocabulary=None if vocabulary == "none" else TagVocabulary.load(vocabulary),
                            shard_size=shard_size, limit=limit, layout=layout)


def _known_ratings(ratings) -> bool:
    unknown = [rating for rating in ratings if rating not in danbooru.RATINGS]
    if unknown:
        raise flags.ValidationError(f"unknown ratings {unknown}: choose among {', '.join(danbooru.RATINGS)}")
    return True


def define_flags() -> None:
    """Defines the command's flags. Only run as a program: prepare_faces, preview_data and tests
    import this module, and absl refuses a flag name defined twice in one process."""
    flags.DEFINE_string("metadata", None, "posts metadata: a JSON-lines or .parquet file, or a folder of them "
                        "(other tables in it, e.g. tags/pools/artists, are skipped)", required=True)
    flags.DEFINE_string("images", None, "image root: original/ (<0NNN>/<id>.<file_ext>) or the 512px subset "
                        "(<0NNN>/<id>.jpg), 0NNN = id % 1000 as 4 digits", required=True)
    flags.DEFINE_enum("layout", "auto", list(danbooru.IMAGE_LAYOUTS),
                      "original: <id>.<file_ext>; 512px: every image <id>.jpg; auto: 512px if the folder is "
                      "named 512px or holds only .jpg files, else original")
    define_crop_flags()
    flags.DEFINE_integer("min_favs", 0, "drop posts with fewer favourites")
    flags.DEFINE_float("max_age_years", 6.0, "drop posts older than this (<0: keep all)")
    flags.DEFINE_string("reference_date", None, "date the age is measured from, ISO (default: the newest post's date)")
    define_shape("min_size", None, "drop images smaller than HEIGHTxWIDTH (default: the target shape)")
    flags.DEFINE_list("ratings", ["g"], "ratings to keep, of g,s,q,e. Since 2022 Danbooru rates g = general "
                      "(safe for work), s = sensitive (not safe: mild nudity, suggestive), q = questionable, "
                      "e = explicit; dumps before 2022 used s = safe, q, e (no g): give --ratings=s for those")
    flags.register_validator("ratings", _known_ratings)
    flags.DEFINE_list("exclude_tags", ["lying", "on_side"], "drop posts with any of these")
    flags.DEFINE_enum("crop", "face", ["face", "centre"], "crop the face, or the largest centred crop")
    flags.DEFINE_enum("detector", "animeface", ["animeface", "opencv", "boxes"], "face detector for --crop=face")
    flags.DEFINE_string("cascade", None, "OpenCV cascade XML for --detector=opencv "
                        "(e.g. nagadomi's lbpcascade_animeface.xml)")
    flags.DEFINE_string("boxes", None, "JSON {post id: [[x, y, w, h, confidence], ...]} "
                        "for --detector=boxes (faces found by another tool)")
    flags.DEFINE_string("vocabulary", "default", "tag vocabulary JSON, 'default' or 'none'")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        prepare(FLAGS.metadata, FLAGS.images, FLAGS.out, shape=FLAGS.shape, min_confidence=FLAGS.min_confidence,
                min_face_size=FLAGS.min_face_size, margin=FLAGS.margin, max_faces=FLAGS.max_faces,
                check_crops=FLAGS.check_crops, shard_size=FLAGS.shard_size, limit=FLAGS.limit, min_favs=FLAGS.min_favs,
                max_age_years=FLAGS.max_age_years, reference_date=FLAGS.reference_date, min_size=FLAGS.min_size,
                ratings=FLAGS.ratings, exclude_tags=FLAGS.exclude_tags, crop=FLAGS.crop, detector=FLAGS.detector,
                cascade=FLAGS.cascade, boxes=FLAGS.boxes, vocabulary=FLAGS.vocabulary, layout=FLAGS.layout)
    except (ValueError, OSError, ImportError) as e:  # bad input, a missing file or optional package
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
