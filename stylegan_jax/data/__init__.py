"""Input data: the embedded synthetic portraits (a TFDS dataset) and one pipeline for every source.

Submodules are imported where they are used (`from stylegan_jax.data.pipeline import
make_pipeline`). Nothing is imported here, so that the networks, the train step and the explorer,
which need only `stylegan_jax.data.labels`, import without TensorFlow (e.g. on an accelerator
machine that has JAX but no TensorFlow). The TFDS builder "synthetic_portraits" is registered by
`stylegan_jax.data.sources`, which every reader of TFDS data goes through.
"""
