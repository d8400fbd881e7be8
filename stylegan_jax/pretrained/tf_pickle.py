"""Reads NVIDIA's `dnnlib` TensorFlow network pickles as plain data, without TensorFlow.

A pickle is a program: unpickling may call any importable function (os.system included), so
these files are read with an unpickler that resolves only the classes such a file is made of:

* `dnnlib.tflib.network.Network` (rebuilt here as a `NetworkState`: its `__setstate__` state,
  never the TensorFlow graph or the build module's source code, which is kept as text and
  never run),
* NumPy's array, dtype and scalar reconstruction (`numpy.core.multiarray._reconstruct`,
  `numpy.ndarray`, `numpy.dtype`, `numpy.core.multiarray.scalar`, `numpy.core.numeric._frombuffer`,
  also under `numpy._core`),
* `collections.OrderedDict`, `dnnlib.util.EasyDict` (read as a dict) and `_codecs.encode` (how
  protocol-2 pickles store bytes).

Anything else stops the read with `UnsafePickleError` naming the class found, before it is
called. The state of a Network (NVlabs/stylegan dnnlib/tflib/network.py, `__getstate__`) is a
dict: version, name, static_kwargs, components (sub-networks by role), build_module_src,
build_func_name, variables (a list of (name, array)).
"""
import collections
import dataclasses
import importlib
import io
import pickle
from typing import Any, Dict, Tuple

import numpy as np

NETWORK_CLASS = ("dnnlib.tflib.network", "Network")
# Where this NumPy keeps multiarray and numeric (NumPy 2 renamed numpy.core to numpy._core).
_NUMPY_CORE = "numpy._core" if hasattr(np, "_core") else "numpy.core"


class UnsafePickleError(ValueError):
    """The pickle references a class or function outside the allowed set (it could run code)."""


class NetworkPickleError(ValueError):
    """The file is not a readable dnnlib network pickle."""


@dataclasses.dataclass
class NetworkState:
    """The pickled state of one `dnnlib.tflib.network.Network`."""
    name: str                             # network name ("G", "D", "Gs", "G_mapping", ...)
    build_func_name: str                  # its build function ("G_style", "D_basic", ...)
    static_kwargs: Dict[str, Any]         # keyword arguments of the build function
    components: Dict[str, "NetworkState"]  # sub-networks by role ("mapping", "synthesis")
    variables: Dict[str, np.ndarray]      # own variables (not the components'), by local name
    version: int                          # state format version (2 or 3 in StyleGAN v1)
    build_module_src: str = ""            # source of the build module, kept as text, never run


class _PickledNetwork:
    """Stand-in for dnnlib.tflib.network.Network while unpickling: keeps the state it is given."""

    def __setstate__(self, state):
        self.state = state


class _EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict (a dict with attribute access): read as a dict."""


def _numpy_global(module: str, name: str):
    """The NumPy reconstruction helpers pickles of arrays and scalars name, under either of
    NumPy's module layouts (numpy.core before NumPy 2, numpy._core after)."""
    allowed = {("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")}
    for prefix in ("numpy.core.", "numpy._core."):
        if module.startswith(prefix) and (module[len(prefix):], name) in allowed:
            return getattr(importlib.import_module(_NUMPY_CORE + "." + module[len(prefix):]), name)
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the classes a dnnlib network pickle is made of (see the module docstring)."""

    def find_class(self, module, name):
        if (module, name) == NETWORK_CLASS:
            return _PickledNetwork
        if (module, name) == ("dnnlib.util", "EasyDict"):
            return _EasyDict
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) == ("_codecs", "encode"):
            import codecs  # pylint: disable=import-outside-toplevel
            return codecs.encode
        found = _numpy_global(module, name)
        if found is not None:
            return found
        raise UnsafePickleError(
            f"the pickle references {module}.{name}, which a StyleGAN network pickle does not "
            f"contain; it was not loaded (a pickle can run code, so only dnnlib networks, NumPy "
            f"arrays and plain containers are allowed)")


def _network_state(obj, where: str) -> NetworkState:
    if not isinstance(obj, _PickledNetwork):
        raise NetworkPickleError(f"{where} is a {type(obj).__name__}, not a "
                                 f"{'.'.join(NETWORK_CLASS)}")
    state = getattr(obj, "state", None)
    keys = ("name", "static_kwargs", "build_func_name", "variables")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise NetworkPickleError(f"{where} has no network state ({', '.join(keys)})")
    variables = collections.OrderedDict()
    for entry in state["variables"]:
        name, value = entry
        value = np.asarray(value)
        if value.dtype == object:
            raise NetworkPickleError(f"{where} variable {name} holds Python objects, not numbers")
        if name in variables:
            raise NetworkPickleError(f"{where} has variable {name} twice")
        variables[str(name)] = value
    components = {str(role): _network_state(comp, f"{where}.components.{role}")
                  for role, comp in dict(state.get("components") or {}).items()}
    return NetworkState(name=str(state["name"]), build_func_name=str(state["build_func_name"]),
                        static_kwargs=dict(state["static_kwargs"] or {}), components=components,
                        variables=variables, version=int(state.get("version", 0)),
                        build_module_src=str(state.get("build_module_src") or ""))


def loads(data: bytes, what: str = "the pickle") -> Tuple[NetworkState, ...]:
    """The networks of a pickled tuple (NVIDIA's training snapshots hold (G, D, Gs)), as states."""
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError:
        raise
    except Exception as e:  # pylint: disable=broad-except  (any failure = not such a pickle)
        raise NetworkPickleError(f"{what} is not a readable pickle "
                                 f"({type(e).__name__}: {str(e)[:160]})") from None
    if isinstance(obj, _PickledNetwork):
        obj = (obj,)
    if not isinstance(obj, tuple):
        raise NetworkPickleError(f"{what} holds a {type(obj).__name__}, not a tuple of dnnlib "
                                 f"networks")
    return tuple(_network_state(x, f"{what}[{i}]") for i, x in enumerate(obj))


def load(path: str) -> Tuple[NetworkState, ...]:
    """`loads` of a file."""
    with open(path, "rb") as f:
        return loads(f.read(), path)
