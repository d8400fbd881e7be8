"""Progress bar and TensorBoard event files (process 0 only).

TensorBoard events are written with TensorFlow's own summary op and the scalar/image plugin
metadata filled in here, so the `tensorboard` package is needed only to *view* them.
"""
import io
import os
import time

import jax
from PIL import Image
from tqdm import tqdm

from stylegan_jax.data.tf_cpu import tensorflow_on_cpu
from stylegan_jax.training.schedule import Phase


class SummaryWriter:
    """Scalars and PNG images to `logdir` as TensorBoard events."""

    def __init__(self, logdir: str):
        self._tf = tensorflow_on_cpu()
        from tensorflow.core.framework import summary_pb2  # pylint: disable=import-outside-toplevel
        self._meta = {
            kind: summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
                data_class=data_class)
            for kind, plugin, data_class in (
                ("scalar", "scalars", summary_pb2.DATA_CLASS_SCALAR),
                ("image", "images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE))}
        self._writer = self._tf.summary.create_file_writer(logdir)

    def scalars(self, step: int, values: dict) -> None:
        """One float scalar per name."""
        with self._writer.as_default(step=step):
            for name, value in values.items():
                self._tf.summary.write(name, self._tf.constant(float(value), self._tf.float32),
                                       metadata=self._meta["scalar"])

    def png(self, step: int, name: str, path: str) -> None:
        """A PNG file as an image summary ([width, height, encoded bytes], the plugin's format)."""
        with open(path, "rb") as f:
            data = f.read()
        width, height = Image.open(io.BytesIO(data)).size
        with self._writer.as_default(step=step):
            self._tf.summary.write(name, self._tf.constant([str(width), str(height), data]),
                                   metadata=self._meta["image"])

    def flush(self) -> None:
        self._writer.flush()


class Reporter:
    """tqdm bar (kimg, resolution, alpha, images/s, losses, the augmentation p when there is
    one) plus TensorBoard, on process 0."""

    def __init__(self, workdir: str, total_kimg: float, kimg: float, enabled: bool):
        self.enabled = enabled
        self._bar = tqdm(total=round(total_kimg, 3), initial=round(kimg, 3), unit="kimg",
                         dynamic_ncols=True, disable=not enabled,
                         bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg "
                                    "[{elapsed}<{remaining}{postfix}]")
        self._writer = SummaryWriter(os.path.join(workdir, "tensorboard")) if enabled else None
        self._last = (time.time(), kimg)

    def report(self, step: int, phase: Phase, kimg: float, metrics: dict) -> None:
        """Shows and logs one step's metrics (fetching them waits for that step)."""
        if not self.enabled:
            return
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        now = time.time()
        rate = (kimg - self._last[1]) * 1000.0 / max(now - self._last[0], 1e-9)
        self._last = (now, kimg)
        self._bar.set_postfix_str(
            f"{phase.shape[0]}x{phase.shape[1]} a={phase.alpha:.2f} {rate:.0f} img/s "
            f"D={metrics['d_loss']:.3f} G={metrics['g_loss']:.3f}"
            + (f" p={metrics['augment_p']:.3f}" if "augment_p" in metrics else ""), refresh=False)
        self._bar.update(round(kimg - self._bar.n, 3))
        self._writer.scalars(step, dict(metrics, kimg=kimg, lod=phase.lod, alpha=phase.alpha,
                                        minibatch=phase.minibatch, g_lr=phase.g_lr,
                                        d_lr=phase.d_lr, images_per_second=rate))

    def scalars(self, step: int, values: dict) -> None:
        """Logs extra scalars (e.g. quality metrics) to TensorBoard."""
        if self.enabled:
            self._writer.scalars(step, values)

    def image(self, step: int, name: str, path: str) -> None:
        """Adds a written PNG (e.g. a sample grid) to TensorBoard."""
        if self.enabled:
            self._writer.png(step, name, path)

    def close(self) -> None:
        self._bar.close()
        if self._writer is not None:
            self._writer.flush()
