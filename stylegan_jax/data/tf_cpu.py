"""TensorFlow for input only: import it with accelerators hidden so JAX owns every GPU/TPU."""
import functools
import os

# Quiet TF's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@functools.lru_cache(maxsize=None)
def tensorflow_on_cpu():
    """Returns the `tensorflow` module with GPUs and TPUs made invisible to it.

    Must run before TF creates its first op; otherwise TF would pre-allocate GPU memory that JAX
    needs. Calling it again is free (cached).
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    for device_type in ("GPU", "TPU"):
        try:
            tf.config.set_visible_devices([], device_type)
        except (RuntimeError, ValueError):
            # RuntimeError: devices already initialised (someone used TF first) -- nothing we can
            # change now; ValueError: no such device type on this build.
            pass
    # TF only feeds input here; its Python deprecation notices (e.g. from TFDS readers) are noise.
    tf.get_logger().setLevel("ERROR")
    return tf
