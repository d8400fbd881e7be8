"""Tag-labelled anime portraits at 512x256, ACGAN discriminator.

    python -m experiments.train --config=rect_anime_acgan:/path/to/prepared/danbooru --workdir=workdirs/rect_anime_acgan

The rect_anime model and schedule on a Danbooru portrait set prepared with tag labels
(experiments/prepare_danbooru.py: gender, hair colour, eye colour, open mouth, hairband; each an
attribute block of the LabelSpec, unmatched tags leave a block unspecified, which the losses skip).
D is conditioned by an auxiliary classifier (softmax per attribute).
"""
from experiments.configs import _conditional, rect_anime


def get_config(arg=None):
    """rect_anime with acgan conditioning; `arg` = prepared dataset dir."""
    config = _conditional.make_conditional(rect_anime.get_config(arg), "acgan")
    config.data.prepare_hint = rect_anime.prepare_hint("rect_anime_acgan")
    return config
