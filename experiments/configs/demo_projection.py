"""Conditional demo, projection discriminator: synthetic 64x32 portraits drawn to order.

    python -m experiments.train --config=demo_projection --workdir=workdirs/demo_projection
    python -m benchmarks.bench_conditional --runs=projection:workdirs/demo_projection

The demo schedule (about a quarter of an hour on a 2-core CPU) with G conditioned on all four
attributes (hair colour, eye colour, open mouth, hairband: a multi-hot LabelSpec vector) and D
conditioned by projection (Miyato & Koyama, arXiv 1802.05637) and matching-aware (real images
with one attribute's label changed count as fakes, loss.mismatch_weight = 1).
`--config=demo_projection:long` trains 100 kimg longer at 64x32, as demo:long.
"""
from experiments.configs import _conditional, demo


def get_config(arg=None):
    """The demo with projection conditioning; arg 'long' as for demo."""
    return _conditional.make_conditional(demo.get_config(arg), "projection")
