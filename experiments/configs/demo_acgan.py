"""Conditional demo, ACGAN discriminator: synthetic 64x32 portraits drawn to order.

    python -m experiments.train --config=demo_acgan --workdir=workdirs/demo_acgan
    python -m benchmarks.bench_conditional --runs=acgan:workdirs/demo_acgan

The demo schedule (about a quarter of an hour on a 2-core CPU) with G conditioned on all four
attributes (hair colour, eye colour, open mouth, hairband: a multi-hot LabelSpec vector) and D
conditioned by an auxiliary classifier (Odena et al., arXiv 1610.09585).
`--config=demo_acgan:long` trains 100 kimg longer at 64x32, as demo:long: measured, it draws every
requested attribute at >= 90% accuracy (hair 0.984, eyes 0.909, mouth 0.937, hairband 0.934;
benchmarks/README.md), in 54 min on 2 cores shared with other work.
"""
from experiments.configs import _conditional, demo


def get_config(arg=None):
    """The demo with acgan conditioning; arg 'long' as for demo."""
    return _conditional.make_conditional(demo.get_config(arg), "acgan")
