"""Tools that turn real image collections into prepared training sets.

- danbooru: Danbooru20xx metadata parsing and the curation filters.
- crops:    face-crop geometry at the target aspect ratio, and face detectors.
- landmarks: FFHQ-style crops from facial landmarks (rotated face square plus the same below).
- tags:     label vocabularies (tags -> categorical attributes) and tag counts.
- images:   safe image loading, crop + resize to the target shape.
- runner:   the resumable preparation loop shared by all tools.
- review:   the review grid web server (page in review_page) whose marks exclude images from training.

The command-line tools live in experiments/prepare_*.py and experiments/review.py; they write the
on-disk format of stylegan_jax/data/prepared.py, which make_pipeline reads.
"""
