"""`--config=NAME` flags: NAME is a config under experiments/configs/ or a path to a config file.

Built on ml_collections' config-file flag, so `--config.schedule.total_kimg=300` style overrides
work as usual. Two additions: a bare name such as `demo` resolves to experiments/configs/demo.py
(`demo:arg` passes `arg` to its get_config, like a path would), and both an unknown name and an
unknown override key fail at once with the list of valid choices.
"""
import os
from typing import List, Optional

from absl import flags
from ml_collections import config_dict
from ml_collections.config_flags import config_flags
from ml_collections.config_flags import config_path

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def config_names() -> List[str]:
    """Names of the configs in experiments/configs/ (file names without .py)."""
    return sorted(f[:-3] for f in os.listdir(CONFIG_DIR)
                  if f.endswith(".py") and not f.startswith("_"))


def resolve_config_path(spec: str) -> str:
    """'demo' -> '<repo>/experiments/configs/demo.py'; 'demo:arg' and file paths pass through."""
    name, sep, arg = spec.partition(":")
    if name.endswith(".py") or os.sep in name:
        if not os.path.isfile(name):
            raise FileNotFoundError(f"config file '{name}' does not exist: give a path to a .py "
                                    f"file or one of {', '.join(config_names())}")
        return spec
    if name not in config_names():
        raise ValueError(f"unknown config '{name}': choose one of {', '.join(config_names())}")
    return os.path.join(CONFIG_DIR, name + ".py") + sep + arg


def load_config(spec: str, lock: bool = True) -> config_dict.ConfigDict:
    """The ConfigDict a `--config=spec` flag would give, without overrides (for tests/scripts)."""
    return _NamedConfigParser("config", lock_config=lock).parse(spec)


def _valid_keys(node) -> str:
    keys = node.keys() if isinstance(node, (config_dict.ConfigDict, dict)) else []
    return ", ".join(sorted(keys)) or "(none: this field has no sub-keys)"


def check_override(config, override: str, flag_name: str = "config") -> None:
    """Raise a one-line ValueError if `override` (e.g. 'schedule.total_kimg') is not in config."""
    node = config
    parts = config_path.split(override)
    for depth, part in enumerate(parts):
        has = isinstance(node, (config_dict.ConfigDict, dict)) and part in node
        if not has:
            where = ".".join([flag_name] + [str(p) for p in parts[:depth]])
            raise ValueError(f"unknown config key '--{flag_name}.{override}': '{part}' is not a "
                             f"field of {where}; valid keys: {_valid_keys(node)}")
        node = node[part]


class _NamedConfigParser(config_flags.ConfigFileFlagParser):
    """Config-file parser that also accepts a name from experiments/configs/."""

    def parse(self, path):
        try:
            path = resolve_config_path(path)
        except FileNotFoundError as e:  # absl reports ValueErrors as one-line flag errors
            raise ValueError(str(e)) from None
        config = super().parse(path)
        if isinstance(config, config_flags._ErrorConfig):  # pylint: disable=protected-access
            config.lock()  # re-raises the load error now instead of at first use
        return config


class _NamedConfigFlag(config_flags._ConfigFlag):  # pylint: disable=protected-access
    """The ml_collections config flag, validating override keys before applying them."""

    def _initialize_missing_parent_fields(self, config, overrides):
        for override in overrides:
            try:
                check_override(config, override, self.name)
            except ValueError as e:  # absl prints these as a one-line flag error
                raise flags.IllegalFlagValueError(str(e)) from None
        super()._initialize_missing_parent_fields(config, overrides)


def DEFINE_config_name(name: str = "config", default: Optional[str] = None,  # pylint: disable=invalid-name
                       help_string: str = "config name under experiments/configs/ or a path",
                       flag_values: flags.FlagValues = flags.FLAGS,
                       sys_argv: Optional[List[str]] = None) -> flags.FlagHolder:
    """Defines `--name=NAME[:arg]` plus `--name.field=value` overrides; the config is locked.

    sys_argv: the command line to find overrides in (default sys.argv; for tests).
    """
    flag = _NamedConfigFlag(parser=_NamedConfigParser(name, lock_config=True),
                            serializer=flags.ArgumentSerializer(), name=name, default=default,
                            help_string=help_string, flag_values=flag_values, sys_argv=sys_argv)
    return flags.DEFINE_flag(flag, flag_values)
