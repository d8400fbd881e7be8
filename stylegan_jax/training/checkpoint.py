"""Orbax checkpoints of the whole TrainState, with a checksum, that refuse to load wrong data.

A checkpoint is one orbax step directory holding the state and a JSON record (`meta`: images
seen, data-stream position, the config, a CRC32 of every array). Writes are atomic (orbax writes
to a temporary directory and renames it when complete) and the last `keep` are kept.

`save` refuses a state with a NaN or infinity in any array (`NonFiniteError`), so the
checkpoints on disk are always finite and the newest one is the last good state of a run.

A checkpoint written before a field of `state.ADDED_FIELDS` existed restores with that field's
default (or the value a `defaults` state gives), so old runs resume.

Loading fails with a one-line `CheckpointError` when the checkpoint does not fit the current
config (a parameter's shape differs) or cannot be read / does not match its checksum; the
checkpoint is left exactly as it is (the run stops before anything is written).

`label_spec(meta)` is the label layout a conditional run recorded in that JSON.
"""
import dataclasses
import os
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.training.parallel import to_host
from stylegan_jax.training.state import ADDED_FIELDS


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from (corrupt, or made with another config)."""


class NonFiniteError(ValueError):
    """A training state with a NaN or infinity: the run diverged, and nothing was saved."""


def _path_str(path) -> str:
    """'g_params/synthesis_network/8x4_conv/weight' for any mix of dict/attr/index keys."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
    return "/".join(parts)


def tree_shapes(tree) -> Dict[str, Tuple[int, ...]]:
    """{'g_params/.../kernel': shape} of every array of a pytree."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_path_str(p): tuple(getattr(x, "shape", ())) for p, x in leaves}


def first_shape_mismatch(have: dict, want: dict):
    """(path, have's shape, want's shape) of the first path, in sorted order, where two
    `tree_shapes` differ ("absent" where one lacks it), or None if they agree."""
    for name in sorted(set(have) | set(want)):
        if have.get(name) != want.get(name):
            return name, have.get(name, "absent"), want.get(name, "absent")
    return None


def state_checksum(host_state) -> int:
    """CRC32 over the bytes of every array of a host (numpy) pytree, in tree order."""
    crc = 0
    for leaf in jax.tree.leaves(host_state):
        crc = zlib.crc32(np.ascontiguousarray(leaf).tobytes(), crc)
    return crc


def non_finite_arrays(host_state) -> List[str]:
    """Paths of the floating-point arrays of a host (numpy) pytree holding a NaN or infinity."""
    return [_path_str(p) for p, x in jax.tree_util.tree_flatten_with_path(host_state)[0]
            if np.issubdtype(np.asarray(x).dtype, np.inexact) and not np.all(np.isfinite(x))]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200] if text else ''}"


def _absent_added_fields(abstract_state, saved_shapes) -> List[str]:
    """The fields of ADDED_FIELDS that abstract_state (a dataclass) has and the saved tree
    lacks."""
    if not dataclasses.is_dataclass(abstract_state):
        return []
    saved_fields = {name.split("/")[0] for name in saved_shapes}
    return [f.name for f in dataclasses.fields(abstract_state)
            if f.name in ADDED_FIELDS and f.name not in saved_fields]


class Checkpointer:
    """Saves and restores TrainStates in `directory` (an orbax CheckpointManager)."""

    def __init__(self, directory: str, keep: int, read_only: bool = False):
        self.directory = os.path.abspath(directory)
        if read_only and not os.path.isdir(self.directory):
            raise FileNotFoundError(f"no checkpoints in {self.directory}: train first, or give "
                                    f"the workdir of a training run")
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=not read_only, read_only=read_only),
            item_handlers={"state": ocp.StandardCheckpointHandler(),
                           "meta": ocp.JsonCheckpointHandler()})

    def latest_step(self) -> Optional[int]:
        """Step of the newest complete checkpoint, or None."""
        return self._manager.latest_step()

    def save(self, state, meta: Dict[str, Any]) -> int:
        """Starts writing `state` (all processes call this) and returns its step; raises
        NonFiniteError, writing nothing, if an array of the state is not finite."""
        host_state = to_host(state)
        step = int(host_state.step)
        bad = non_finite_arrays(host_state)
        if bad:
            what = (f"{bad[0]} is" if len(bad) == 1 else
                    f"{len(bad)} arrays are ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})")
            raise NonFiniteError(f"{what} not finite, so step {step} was not saved; "
                                 f"{self.last_good()}")
        meta = dict(meta, checksum=state_checksum(host_state))
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
        return step

    def last_good(self) -> str:
        """Where the newest checkpoint is, once pending saves are on disk: one clause for a
        message (every saved state is finite, so it is the last good one)."""
        self.wait()
        step = self.latest_step()
        if step is None:
            return f"no checkpoint was saved in {self.directory} before it"
        return f"the last good checkpoint is {os.path.join(self.directory, str(step))} (kept)"

    def all_steps(self):
        """Steps of all complete checkpoints, oldest first."""
        return sorted(self._manager.all_steps())

    def read_meta(self, step: Optional[int] = None) -> Dict[str, Any]:
        """The JSON record of a checkpoint (default: the newest) without loading the state."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}: train first, or give "
                                    f"the workdir of a run")
        try:
            return dict(self._manager.restore(step, args=ocp.args.Composite(
                meta=ocp.args.JsonRestore()))["meta"])
        except Exception as e:  # pylint: disable=broad-except
            raise CheckpointError(f"checkpoint {self.directory}/{step} is unreadable "
                                  f"({_first_line(e)})") from None

    def restore(self, abstract_state, step: Optional[int] = None,
                defaults: Optional[Callable[[], Any]] = None) -> Tuple[Any, Dict[str, Any]]:
        """A checkpoint (default: the newest) as (state, meta); `abstract_state` gives shapes
        and shardings. Fields of ADDED_FIELDS the checkpoint lacks (it is older than they are)
        take their values from `defaults()` if given, else the dataclass defaults."""
        step = self.latest_step() if step is None else step
        path = os.path.join(self.directory, str(step))
        older = [s for s in self.all_steps() if s < step]
        advice = (f"move it aside to resume from step {max(older)}, or use a new --workdir"
                  if older else "use a new --workdir")
        try:
            saved = self._manager.item_metadata(step)["state"]
            saved_shapes = tree_shapes(saved.tree if hasattr(saved, "tree") else saved)
        except Exception as e:  # pylint: disable=broad-except  (any failure = unreadable)
            raise CheckpointError(f"checkpoint {path} is unreadable ({_first_line(e)}); it was "
                                  f"left untouched: {advice}") from None
        wanted = tree_shapes(abstract_state)
        absent = _absent_added_fields(abstract_state, saved_shapes)
        wanted = {k: v for k, v in wanted.items() if k.split("/")[0] not in absent}
        mismatch = first_shape_mismatch(saved_shapes, wanted)
        if mismatch:
            name, saved, needed = mismatch
            raise CheckpointError(
                f"checkpoint {path} was made with a different config ({name}: saved {saved}, "
                f"this config needs {needed}); it was left untouched: resume with the config it "
                f"was trained with or use a new --workdir")
        target = abstract_state
        if absent:  # the saved fields only, as a dict in field order
            target = {f.name: getattr(abstract_state, f.name)
                      for f in dataclasses.fields(abstract_state) if f.name not in absent}
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
            state, meta = restored["state"], dict(restored["meta"])
            # The checksum runs over the leaves in the order they were saved: field order.
            checksum = state_checksum(to_host([state[name] for name in target] if absent
                                              else state))
        except Exception as e:  # pylint: disable=broad-except
            raise CheckpointError(f"checkpoint {path} is unreadable ({_first_line(e)}); it was "
                                  f"left untouched: {advice}") from None
        if meta.get("checksum") != checksum:
            raise CheckpointError(f"checkpoint {path} is corrupt (checksum {checksum} != saved "
                                  f"{meta.get('checksum')}); it was left untouched: {advice}")
        if absent:
            fresh = defaults() if defaults is not None else type(abstract_state)(**state)
            filled = {name: jax.device_put(getattr(fresh, name), getattr(
                getattr(abstract_state, name), "sharding", None)) for name in absent}
            state = type(abstract_state)(**state, **filled)
        return state, meta

    def wait(self) -> None:
        """Blocks until every started save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finishes pending saves and releases the manager."""
        self._manager.close()


def label_spec(meta: Dict[str, Any]) -> Optional[LabelSpec]:
    """The LabelSpec a checkpoint's meta records, None if the run is unconditional.

    Checkpoints from before the spec was recorded fall back to their data source's spec.
    """
    if meta.get("label_spec"):
        return LabelSpec.from_json(meta["label_spec"])
    if not meta.get("label_size"):
        return None
    # Imported here: reading the data source needs TensorFlow, which restoring a state does not.
    from stylegan_jax.data.pipeline import dataset_info  # pylint: disable=import-outside-toplevel
    data = meta["config"]["data"]
    spec = dataset_info(data["source"], data_dir=data.get("data_dir"))["label_spec"]
    if spec is None or spec.dim != meta["label_size"]:
        raise ValueError(f"the checkpoint has labels of size {meta['label_size']} but records no "
                         f"label spec, and {data['source']} does not give one of that size")
    return spec
