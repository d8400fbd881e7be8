"""Tag-labelled anime portraits at 512x256, projection discriminator.

    python -m experiments.train --config=rect_anime_projection:/path/to/prepared/danbooru --workdir=workdirs/rect_anime_projection

The rect_anime model and schedule on a Danbooru portrait set prepared with tag labels
(experiments/prepare_danbooru.py: gender, hair colour, eye colour, open mouth, hairband; each an
attribute block of the LabelSpec, unmatched tags leave a block unspecified, which the losses skip).
D is conditioned by projection and matching-aware (loss.mismatch_weight = 1: reals with one
specified attribute's label changed count as fakes).
"""
from experiments.configs import _conditional, rect_anime


def get_config(arg=None):
    """rect_anime with projection conditioning; `arg` = prepared dataset dir."""
    config = _conditional.make_conditional(rect_anime.get_config(arg), "projection")
    config.data.prepare_hint = rect_anime.prepare_hint("rect_anime_projection")
    return config
