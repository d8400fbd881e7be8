"""Quality metrics during training (config.metrics): SWD (and FID/KID) every N kimg.

Measured at the current stage's resolution and fade-in, on the generator average, against real
images at that resolution faded the same way D sees them (stages under SWD's 16-px minimum are
enlarged by metrics.evaluate, both sets alike). Every process runs the measurement (the
sampler is one SPMD program, so all must call it equally often) on the same process-0 view of
the data; only process 0 writes the results: TensorBoard scalars "metrics/<name>" and one JSON
line per measurement in <workdir>/metrics.jsonl.
"""
import functools
import json
import os
from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.metrics.evaluate import evaluate, parse_metrics
from stylegan_jax.metrics.inception import load_fid_inception
from stylegan_jax.training.steps import fade_reals
from stylegan_jax.utils import ConfigError

TRAINING_METRICS = ("swd", "fid", "kid")  # ppl needs a feature network: use experiments.evaluate


def check_metrics_config(metrics_config) -> tuple:
    """The metric names of config.metrics, validated at start-up (not hours into a run)."""
    names = parse_metrics(metrics_config.names)
    bad = [n for n in names if n not in TRAINING_METRICS]
    if bad:
        raise ConfigError(f"config.metrics.names: {', '.join(bad)} cannot run during training; "
                         f"choose from {', '.join(TRAINING_METRICS)} (ppl: experiments.evaluate)")
    if any(n in ("fid", "kid") for n in names) and not metrics_config.inception:
        raise ConfigError("config.metrics.names has fid/kid but config.metrics.inception is unset: "
                         "give the .npz made by python -m stylegan_jax.metrics.convert_fid_weights")
    return names


@functools.lru_cache(maxsize=1)
def _inception(path: str):
    """The FID Inception weights, read once per run rather than at every measurement."""
    return load_fid_inception(path)


def measure(metrics_config, *, sampler, g_params, w_avg, latent_size: int, stage: int, alpha: float,
            make_source: Callable, resolution, labels: Optional[np.ndarray], seed: int) -> Dict[str, float]:
    """The configured metrics of `g_params` at (stage, alpha), as {name: value}.

    sampler: samples.make_sampler's jitted function with noise_mode "random" (each image gets its
    own noise, drawn with its latents); make_source(resolution, batch_size, seed)
    yields real batches; labels (conditional runs): rows cycled as the fakes' labels.
    """
    names = check_metrics_config(metrics_config)
    batch_size = int(metrics_config.batch_size)

    def generate_images(key, count):
        k_z, k_noise = jax.random.split(key)
        z = jax.random.normal(k_z, (count, latent_size), jnp.float32)
        y = None if labels is None else labels[np.arange(count) % labels.shape[0]]
        return np.asarray(sampler(g_params, z, y, w_avg, alpha, 1.0, k_noise, stage=stage))

    def real_batches():
        for batch in make_source(resolution=resolution, batch_size=batch_size, seed=seed + 1):
            yield np.asarray(fade_reals(jnp.asarray(batch["image"], jnp.float32), alpha))

    return evaluate(names, generate_images=generate_images, real_batches=real_batches(),
                    num_images=int(metrics_config.num_images), batch_size=batch_size,
                    inception_weights=(_inception(metrics_config.inception)
                                       if any(n in ("fid", "kid") for n in names) else None),
                    seed=seed)


def append_jsonl(path: str, record: dict) -> None:
    """Appends one JSON line (and flushes it to disk: a preempted run keeps what it measured)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())
