"""Config names, overrides and the named configs themselves (no JAX needed)."""
import ast
import os

import pytest
from absl import flags

from experiments import config_flags
from experiments.configs import _base
from stylegan_jax.networks import stage_shape
from stylegan_jax.training import schedule

TRAINING_NAMES = ["demo", "ffhq", "rect_anime", "smoke"]   # a subset: variants (demo_acgan, ...) add more
ALL_NAMES = config_flags.config_names()


def parse(argv):
    """Parses argv with a fresh FlagValues holding only a --config flag; returns the config."""
    values = flags.FlagValues()
    config_flags.DEFINE_config_name("config", flag_values=values, sys_argv=["prog"] + argv)
    values(["prog"] + argv)
    return values.config


def test_names_are_the_config_files():
    config_dir = os.path.join(os.path.dirname(config_flags.__file__), "configs")
    on_disk = sorted(f[:-3] for f in os.listdir(config_dir) if f.endswith(".py") and f[0] != "_")
    assert config_flags.config_names() == on_disk
    assert set(TRAINING_NAMES) <= set(on_disk)


def test_name_and_path_give_the_same_config():
    by_name = parse(["--config=smoke"])
    by_path = parse([f"--config={os.path.join(config_flags.CONFIG_DIR, 'smoke.py')}"])
    assert by_name.to_dict() == by_path.to_dict()


def test_overrides_apply_with_their_types():
    config = parse(["--config=demo", "--config.schedule.total_kimg=3",
                    "--config.schedule.minibatch_dict.res64=16", "--config.seed=7"])
    assert config.schedule.total_kimg == 3.0 and isinstance(config.schedule.total_kimg, float)
    assert config.schedule.minibatch_dict.res64 == 16 and config.seed == 7


def test_argument_after_colon_reaches_get_config():
    normal, long = parse(["--config=demo"]), parse(["--config=demo:long"])
    assert long.schedule.total_kimg == 170 and normal.schedule.total_kimg == 70
    assert long.schedule.lod_training_kimg == 2 * normal.schedule.lod_training_kimg == 10
    with pytest.raises(flags.IllegalFlagValueError, match="unknown demo variant 'x'"):
        parse(["--config=demo:x"])


def test_unknown_name_lists_the_choices():
    with pytest.raises(flags.IllegalFlagValueError) as error:
        parse(["--config=dmeo"])
    assert f"unknown config 'dmeo': choose one of {', '.join(ALL_NAMES)}" in str(error.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(flags.IllegalFlagValueError, match="does not exist"):
        parse([f"--config={tmp_path}/nope.py"])


@pytest.mark.parametrize("override, where, some_valid", [
    ("schedule.lod_trainig_kimg", "config.schedule", "lod_training_kimg"),
    ("nope", "config", "schedule"),
    ("schedule.minibatch_dict.res128", "config.schedule.minibatch_dict", "res64"),
])
def test_unknown_override_key_lists_the_valid_keys(override, where, some_valid):
    with pytest.raises(flags.IllegalFlagValueError) as error:
        parse(["--config=demo", f"--config.{override}=1"])
    message = str(error.value)
    assert f"is not a field of {where}; valid keys:" in message and some_valid in message
    assert "\n" not in message.strip()


@pytest.mark.parametrize("name", ALL_NAMES)
def test_configs_are_consistent(name):
    """Tables cover every stage, minibatches split into mbstd groups, the schedule starts."""
    config = config_flags.load_config(name)
    base, stages = tuple(config.model.base_shape), config.model.num_stages
    keys = {schedule.resolution_key(stage_shape(base, s)) for s in range(stages)}
    assert set(config.schedule.minibatch_dict) == keys
    assert set(config.schedule.g_lrate_dict) <= keys and set(config.schedule.d_lrate_dict) <= keys
    schedule.check_minibatches(config.schedule, base_shape=base, num_stages=stages,
                               multiple=config.discriminator.mbstd_group_size)
    end = schedule.phase_at(int(config.schedule.total_kimg * 1000), config.schedule,
                            base_shape=base, num_stages=stages)
    assert end.stage == stages - 1 and end.alpha == 1.0  # every schedule reaches the top


def test_base_config_documents_every_field():
    """Each assignment in _base.py carries a comment (on its line or the next)."""
    source = open(_base.__file__, encoding="utf-8").read().splitlines()
    tree = ast.parse("\n".join(source))
    fields = [node for node in ast.walk(tree) if isinstance(node, ast.Assign)
              and isinstance(node.targets[0], ast.Attribute)]
    assert len(fields) > 40
    for node in fields:
        lines = source[node.lineno - 1:node.end_lineno + 1]
        assert any("#" in line for line in lines), f"undocumented field at line {node.lineno}"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_config_docstring_has_its_run_command(name):
    text = open(os.path.join(config_flags.CONFIG_DIR, name + ".py"), encoding="utf-8").read()
    doc = ast.get_docstring(ast.parse(text))
    assert f"python -m experiments.train --config={name}" in doc


@pytest.mark.parametrize("name, tool", [("rect_anime", "experiments.prepare_danbooru"),
                                        ("rect_anime_acgan", "experiments.prepare_danbooru"),
                                        ("rect_anime_projection", "experiments.prepare_danbooru"),
                                        ("ffhq", "folder:PATH")])
def test_configs_of_data_to_prepare_say_how(name, tool):
    """The fix train prints when the data is missing names this config and how to make its data."""
    hint = config_flags.load_config(name).data.prepare_hint
    assert hint.startswith(f"{name} trains on ") and f"--config={name}:" in hint and tool in hint
    assert config_flags.load_config(f"{name}:/data/set").data.source == "/data/set"
