"""SIGTERM / SIGINT handling: finish the current step, checkpoint, exit cleanly.

Preemptible machines (cloud TPU/GPU VMs, SLURM) send SIGTERM some seconds before they are taken
away. The handler only sets a flag; the training loop looks at it between steps, saves and stops.
A second Ctrl-C while the save is pending interrupts at once (the usual KeyboardInterrupt).
"""
import signal
import threading

from absl import logging

from stylegan_jax.training.parallel import any_process


class PreemptionWatcher:
    """Context manager installing the handlers; `requested()` says whether to stop."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self._flag = False
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        if self._flag and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self._flag = True
        logging.warning("received %s: saving a checkpoint after this step, then stopping",
                        signal.Signals(signum).name)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals need the main thread
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def requested(self) -> bool:
        """Whether any process was signalled (all processes must call it at the same step: with
        several processes it is a collective, and all of them must stop at the same step)."""
        return any_process(self._flag)
