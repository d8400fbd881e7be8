"""Training batches as a reproducible function of the schedule, so that resumed runs match.

The input pipeline is an iterator, which a checkpoint cannot capture. Instead the stream is cut
into pieces: a new pipeline starts (with its own seed) at every stage and every
`data.reseed_every_kimg`, and a checkpoint records which piece is running and how many batches
of it were drawn. A resumed run restarts that piece and skips those batches (at most
`reseed_every_kimg` worth), then continues with exactly the batches the uninterrupted run saw.
"""
from typing import Callable, Dict, Optional

import numpy as np

from stylegan_jax.training.schedule import Phase


def piece_seed(seed: int, stage: int, piece: int) -> int:
    """Seed of one piece of the stream: distinct for every (seed, stage, piece)."""
    return int(np.random.SeedSequence([seed, stage, piece]).generate_state(1)[0] & 0x7FFFFFFF)


class DataStream:
    """Per-process batches for each step; `position` / `restore` make it resumable.

    make_source(resolution, batch_size, seed) -> iterator of {"image", "label", ...} batches of
    this process's share (batch_size = global minibatch / process count).
    """

    def __init__(self, make_source: Callable, *, seed: int, reseed_every_kimg: float,
                 process_count: int = 1):
        self._make_source = make_source
        self._seed = seed
        self._piece_img = reseed_every_kimg * 1000.0
        self._process_count = process_count
        self._key = None        # (stage, piece) of the running pipeline
        self._iterator = None
        self._drawn = 0         # batches drawn from it
        self._resume = None     # (key, batches) to skip to, from a checkpoint

    def _piece_of(self, phase: Phase, nimg: int):
        piece = int(nimg // self._piece_img) if self._piece_img > 0 else 0
        return (phase.stage, piece)

    def next(self, phase: Phase, nimg: int) -> Dict[str, np.ndarray]:
        """This process's part of the batch for the step that starts after `nimg` images."""
        key = self._piece_of(phase, nimg)
        if key != self._key:
            self._key, self._drawn = key, 0
            self._iterator = iter(self._make_source(
                resolution=phase.shape, batch_size=phase.minibatch // self._process_count,
                seed=piece_seed(self._seed, *key)))
            if self._resume is not None and self._resume[0] == key:
                for _ in range(self._resume[1]):  # replay the part the interrupted run used
                    next(self._iterator)
                self._drawn = self._resume[1]
            self._resume = None
        self._drawn += 1
        return next(self._iterator)

    def position(self) -> Optional[dict]:
        """JSON-able position for a checkpoint (None before the first batch)."""
        if self._key is None:
            return None
        return {"stage": self._key[0], "piece": self._key[1], "batches": self._drawn}

    def restore(self, position: Optional[dict]) -> None:
        """Continue from a `position()` of an earlier run."""
        if position is not None:
            self._resume = ((position["stage"], position["piece"]), position["batches"])
