"""Data parallelism with `jax.jit` over a one-axis device mesh: one code path, 1 CPU to a TPU pod.

The global batch is sharded over the mesh axis "data" and every parameter / optimizer state is
replicated. `jax.jit` then runs the step SPMD on all devices of all processes and inserts the
gradient all-reduce itself: the step is written as if for one device on the global batch, which
is also why results match a single device up to float summation order.
"""
from typing import Any, Optional

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed(*, auto: bool = False, coordinator_address: Optional[str] = None,
                           num_processes: Optional[int] = None,
                           process_id: Optional[int] = None) -> None:
    """Starts multi-process JAX when asked to; a no-op for a single process.

    auto=True lets JAX detect the cluster (Cloud TPU pods, SLURM, ...). An explicit coordinator
    address (with num_processes and process_id) works anywhere, including several CPU processes
    on one machine, whose cross-process collectives then go through gloo.
    """
    if coordinator_address is None and not auto:
        if num_processes not in (None, 1) or process_id not in (None, 0):
            raise ValueError("--num_processes/--process_id need --coordinator_address=HOST:PORT "
                             "(or --distributed for cluster auto-detection)")
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh named "data" over `devices` (default: every device of every process)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of parameters and optimizer states: a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Sharding of batches: split along the leading (example) axis over "data"."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def batch_multiple(mesh: Mesh, group_size: int) -> int:
    """Global batches must divide into equal per-device parts, each a multiple of `group_size`
    (the minibatch-stddev group, so that no group straddles two devices)."""
    return mesh.devices.size * max(group_size, 1)


def global_batch(local_batch: dict, mesh: Mesh, keys=("image", "label")) -> dict:
    """Assembles each process's part of the batch into global arrays sharded over "data".

    Process p holds examples [p * B / P, (p + 1) * B / P) of the global batch B. Only the numeric
    `keys` go to the devices (the pipeline's "key" strings stay on the host).
    """
    sharding = batch_sharded(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(local_batch[k]))
            for k in keys}


def to_host(tree: Any) -> Any:
    """Numpy copy of a replicated pytree, readable on every process (each holds a full copy)."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def any_process(flag: bool) -> bool:
    """True on every process if `flag` is True on at least one (a cheap all-gather)."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))
