"""Checkpointer on a tiny stand-in TrainState: round trip, rotation, corrupt and mismatched data;
the label spec a checkpoint's meta gives."""
import dataclasses
import glob
import json
import os
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from stylegan_jax.data.labels import LabelSpec
from stylegan_jax.training import checkpoint, state as state_lib
from helpers import tree_digest


def tiny_state(step: int, width: int = 3) -> state_lib.TrainState:
    rng = np.random.default_rng(step)
    params = lambda: {"dense": {"kernel": jnp.asarray(rng.normal(size=(2, width)), jnp.float32)}}
    return state_lib.TrainState(
        step=jnp.asarray(step, jnp.int32), nimg=jnp.asarray(8 * step, jnp.int32),
        opt_segment=jnp.asarray(1, jnp.int32), rng=jax.random.PRNGKey(step),
        g_params=params(), d_params=params(), g_ema_params=params(),
        g_opt_state={"mu": params()}, d_opt_state={"mu": params()},
        w_avg=jnp.asarray(rng.normal(size=(4,)), jnp.float32))


def abstract(state):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)


def saved(tmp_path, steps=(3,), keep=3):
    ckpt = checkpoint.Checkpointer(str(tmp_path / "ck"), keep=keep)
    for step in steps:
        ckpt.save(tiny_state(step), {"nimg": 8 * step, "data": {"batches": step}})
    ckpt.close()
    return str(tmp_path / "ck")


def test_round_trip_restores_every_leaf_and_the_metadata(tmp_path):
    directory = saved(tmp_path, steps=(3, 5))
    restored, meta = checkpoint.Checkpointer(directory, keep=3).restore(abstract(tiny_state(0)))
    expected = tiny_state(5)
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert meta["nimg"] == 40 and meta["data"] == {"batches": 5}
    assert meta["checksum"] == checkpoint.state_checksum(jax.device_get(expected))


def test_only_the_last_k_are_kept(tmp_path):
    directory = saved(tmp_path, steps=(1, 2, 3, 4), keep=2)
    assert checkpoint.Checkpointer(directory, keep=2).all_steps() == [3, 4]


def _truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def _flip_bytes(path):
    data = bytearray(open(path, "rb").read())
    for i in range(len(data) // 3, len(data), 7):
        data[i] ^= 0xFF
    open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("pattern, damage", [
    ("5/state/d/*", _truncate),              # array data cut short
    ("5/state/d/*", _flip_bytes),            # array data garbled, length intact
    ("5/state/_METADATA", _flip_bytes),      # tree metadata garbled
    ("5/meta/metadata", _truncate),          # our JSON record cut short
])
def test_corrupt_checkpoint_is_a_clear_error_and_left_untouched(tmp_path, pattern, damage):
    directory = saved(tmp_path, steps=(3, 5))
    targets = glob.glob(os.path.join(directory, pattern))
    assert targets
    for target in targets:
        damage(target)
    before = tree_digest(directory)
    with pytest.raises(checkpoint.CheckpointError) as error:
        checkpoint.Checkpointer(directory, keep=3).restore(abstract(tiny_state(0)))
    message = str(error.value)
    assert os.path.join(directory, "5") in message and "left untouched" in message
    assert "resume from step 3" in message and "\n" not in message
    assert tree_digest(directory) == before


def test_checkpoint_of_another_config_names_the_parameter(tmp_path):
    directory = saved(tmp_path, steps=(3,))
    before = tree_digest(directory)
    with pytest.raises(checkpoint.CheckpointError) as error:
        checkpoint.Checkpointer(directory, keep=3).restore(abstract(tiny_state(0, width=5)))
    assert ("different config (d_opt_state/mu/dense/kernel: saved (2, 3), this config needs "
            "(2, 5))") in str(error.value)
    assert tree_digest(directory) == before


def test_label_spec_is_the_recorded_one_or_none_when_unconditional():
    spec = LabelSpec({"hair_color": ("black", "blonde"), "mouth_open": ("0", "1")})
    assert checkpoint.label_spec({"label_spec": json.loads(spec.to_json()), "label_size": 4}) == spec
    assert checkpoint.label_spec({"label_size": 0}) is None
    assert checkpoint.label_spec({}) is None


def test_label_spec_of_an_old_checkpoint_comes_from_its_data_source(tmp_path):
    for name in ("cats", "dogs"):  # a labelled folder: one class per sub-folder
        os.makedirs(tmp_path / name)
        Image.new("RGB", (4, 8)).save(tmp_path / name / "0.png")
    meta = {"label_size": 2, "config": {"data": {"source": f"folder:{tmp_path}"}}}
    assert checkpoint.label_spec(meta) == LabelSpec({"class": ("cats", "dogs")})
    with pytest.raises(ValueError, match="labels of size 3 but records no label spec"):
        checkpoint.label_spec(dict(meta, label_size=3))


@flax.struct.dataclass
class StateBeforeAugmentation:
    """TrainState as it was before the augmentation fields (state.ADDED_FIELDS) existed."""
    step: jax.Array
    nimg: jax.Array
    opt_segment: jax.Array
    rng: jax.Array
    g_params: Any
    d_params: Any
    g_ema_params: Any
    g_opt_state: Any
    d_opt_state: Any
    w_avg: jax.Array


def test_checkpoint_from_before_augmentation_restores_with_the_defaults(tmp_path):
    new = tiny_state(4)
    old = StateBeforeAugmentation(**{f.name: getattr(new, f.name)
                                     for f in dataclasses.fields(StateBeforeAugmentation)})
    ckpt = checkpoint.Checkpointer(str(tmp_path / "ck"), keep=3)
    ckpt.save(old, {"nimg": 32})
    ckpt.close()
    ckpt = checkpoint.Checkpointer(str(tmp_path / "ck"), keep=3)
    restored, meta = ckpt.restore(abstract(new))
    assert isinstance(restored, state_lib.TrainState) and meta["nimg"] == 32
    for name in (f.name for f in dataclasses.fields(StateBeforeAugmentation)):
        for got, want in zip(jax.tree.leaves(getattr(restored, name)),
                             jax.tree.leaves(getattr(new, name)), strict=True):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert float(restored.augment_p) == 0.0 and restored.ada_stats.tolist() == [0.0, 0.0]
    # A run that resumes it takes the added fields from its fresh state (e.g. config.augment.p).
    fresh = tiny_state(0).replace(augment_p=jnp.float32(0.25))
    assert float(ckpt.restore(abstract(new), defaults=lambda: fresh)[0].augment_p) == 0.25
