"""Networks trained elsewhere: NVIDIA's StyleGAN v1 TensorFlow pickles, read without TensorFlow.

Modules: tf_pickle (a restricted unpickler for `dnnlib.tflib.network.Network` pickles),
stylegan_v1 (their variables mapped onto this project's generator and discriminator).
"""
