r"""Train a progressive StyleGAN.

    python -m experiments.train --config=demo --workdir=workdirs/demo
    python -m experiments.train --config=rect_anime:/data/danbooru --workdir=/mnt/shared/run \
        --config.schedule.total_kimg=12000

Restarting with the same --workdir resumes from its latest checkpoint. On a multi-host TPU pod run
the same command on every host with --distributed (or give --coordinator_address,
--num_processes and --process_id explicitly, e.g. for several CPU processes on one machine).
"""
from absl import app
from absl import flags

from experiments import config_flags
from stylegan_jax.utils import ConfigError, enable_compilation_cache, exit_with_error

_CONFIG = config_flags.DEFINE_config_name("config", default="demo")
_WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints, samples and logs",
                               required=True)
_DISTRIBUTED = flags.DEFINE_bool("distributed", False,
                                 "call jax.distributed.initialize() with cluster auto-detection")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0 (multi-process without auto-detection)")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "number of processes")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "index of this process")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # Imported here so that --help and flag errors do not pay for importing JAX and TF.
    # pylint: disable=import-outside-toplevel
    from stylegan_jax.data.sources import DatasetNotFoundError
    from stylegan_jax.training import checkpoint, loop, parallel
    config = _CONFIG.value
    parallel.initialize_distributed(auto=_DISTRIBUTED.value,
                                    coordinator_address=_COORDINATOR.value,
                                    num_processes=_NUM_PROCESSES.value,
                                    process_id=_PROCESS_ID.value)
    enable_compilation_cache()  # a resumed run loads the train steps compiled before
    try:  # the data first: a missing or unusable dataset is reported before anything compiles
        data_info = loop.source_info(config)
    except DatasetNotFoundError as e:  # a config that says how its data is made knows the fix
        hint = config.data.get("prepare_hint")
        exit_with_error(e.with_fix(hint) if hint else e)
    except ValueError as e:
        exit_with_error(e)
    # One line, no traceback: the message names the config field that cannot work (checked
    # before the first step), the bad checkpoint or the diverged step, and what to do.
    try:
        loop.train_and_evaluate(config, _WORKDIR.value, data_info=data_info)
    except (ConfigError, checkpoint.CheckpointError, checkpoint.NonFiniteError) as e:
        exit_with_error(e)


if __name__ == "__main__":
    app.run(main)
