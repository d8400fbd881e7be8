"""Shared test helper: a gradient checked against central finite differences."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest


def assert_matches_finite_differences(fn, params, grads, num_directions, h=1e-5, rel=1e-6):
    """<grads, d> equals (fn(p + h d) - fn(p - h d)) / 2h along random directions d."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(0)
    for _ in range(num_directions):
        direction = treedef.unflatten([rng.standard_normal(l.shape) for l in leaves])
        step = lambda s: jax.tree_util.tree_map(lambda p, d: p + s * d, params, direction)
        numeric = (fn(step(h)) - fn(step(-h))) / (2 * h)
        analytic = sum(float(jnp.sum(g * d)) for g, d in zip(jax.tree_util.tree_leaves(grads),
                                                              jax.tree_util.tree_leaves(direction)))
        assert analytic == pytest.approx(float(numeric), rel=rel)
