"""A small, exact JAX -> ONNX converter for inference graphs (no extra converter dependency).

`jaxpr_to_onnx` walks the jaxpr of a traced function. Every equation whose inputs are all known
constants (weights, their equalized-LR scaling, fixed noise drawn with jax.random) is evaluated
with JAX right away and becomes an ONNX initializer; only the equations that depend on the model
inputs become ONNX nodes. The exception is a constant broadcast that would store far more numbers
than its inputs hold (`_outgrows`): a broadcast stays pending (its small operand is kept), and an
elementwise op whose operands broadcast to a much larger result (the generator's noise
[1, H, W, 1] times its per-channel strength [C]) becomes a node, so the file holds H*W + C numbers,
not H*W*C. The generator then needs just ~25 primitives (dense, conv, norms, elementwise math,
pads and slices), all mapped one-to-one below, so the result is exact and small.

One symbolic batch dimension is supported (trace with jax.export.symbolic_shape): wherever a
shape contains it, the shape tensor is assembled at run time from the input that carries it.
Broadcasts (bias and scalar operands spread to [N, H, W, C]) are left to ONNX's own numpy-style
broadcasting of elementwise ops: they are expanded only where a non-elementwise op needs the full
shape, which removes most Expand nodes. Convolutions are NHWC in JAX and NCHW in ONNX: each is
wrapped in two Transposes, which ONNX Runtime's transpose optimizer cancels between neighbouring
layers. Opset 15 / IR 8: a level that Unity Sentis and older runtimes accept.
"""
import hashlib
from typing import Dict, List, Sequence

import jax
import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 15
IR_VERSION = 8

_ELEMENTWISE = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "max": "Max", "min": "Min",
                "neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "tanh": "Tanh",
                "logistic": "Sigmoid", "abs": "Abs", "pow": "Pow", "ge": "GreaterOrEqual",
                "gt": "Greater", "le": "LessOrEqual", "lt": "Less", "eq": "Equal", "and": "And",
                "or": "Or", "not": "Not", "copy": "Identity", "copy_p": "Identity",
                "floor": "Floor", "ceil": "Ceil", "sign": "Sign"}
# Primitives whose ONNX ops broadcast their operands numpy-style (no materialized broadcasts needed).
_BROADCASTING = set(_ELEMENTWISE) | {"ne", "rsqrt", "integer_pow", "square", "convert_element_type",
                                     "select_n", "clamp"}
# A broadcast or elementwise result of constants is not stored in full when it has at least
# _MIN_UNFOLDED elements and over _GROWTH times as many as its constant operands hold.
_GROWTH = 4
_MIN_UNFOLDED = 1024
_CALLS = ("jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
          "remat", "checkpoint")


def _is_static(shape) -> bool:
    return all(isinstance(d, (int, np.integer)) for d in shape)


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _outgrows(shape, args) -> bool:
    """Whether an array of `shape` holds far more numbers than the constant `args` (_GROWTH)."""
    size = _size(shape)
    return size >= _MIN_UNFOLDED and size > _GROWTH * sum(_size(np.shape(v)) for _, v in args)


def _grows(eqn, args) -> bool:
    """Whether evaluating `eqn` (constant operands, static output) in full would store far more
    numbers than its operands: a broadcast or elementwise op with a large output."""
    name, out = eqn.primitive.name, eqn.outvars[0].aval
    if name != "broadcast_in_dim" and name not in _BROADCASTING:
        return False
    if not isinstance(out.dtype, np.dtype):  # PRNG keys and other extended dtypes: always fold
        return False
    return _outgrows(out.shape, args)


def _unit_shape(eqn, operand_shape) -> list:
    """broadcast_in_dim's output shape with 1 wherever the operand (of `operand_shape`) has no
    dim: the rank-aligned operand, which broadcasts numpy-style to the output."""
    unit = [1] * len(eqn.params["shape"])
    for src, dst in enumerate(eqn.params["broadcast_dimensions"]):
        unit[dst] = operand_shape[src]
    return unit


def _full(value, aval):
    """A constant at its jaxpr shape (a pending broadcast expanded)."""
    if tuple(np.shape(value)) == tuple(aval.shape):
        return value
    return np.broadcast_to(np.asarray(value), aval.shape)


def _inner_jaxpr(eqn):
    """(jaxpr, consts) of a call-like equation (jit, custom_jvp_call, ...)."""
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        if key in eqn.params:
            inner = eqn.params[key]
            return (inner.jaxpr, inner.consts) if hasattr(inner, "consts") else (inner, ())
    raise NotImplementedError(f"no inner jaxpr in {eqn.primitive.name}")


class _Converter:
    """Emits ONNX nodes for one jaxpr; `env` maps jaxpr variables to constants or tensor names."""

    def __init__(self):
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self.dim_tensors: Dict[str, str] = {}  # symbolic dim -> int64[1] tensor name
        self.partial: Dict[str, tuple] = {}  # tensor -> its run-time shape, where that is only
        #                                      broadcastable to (not equal to) its jaxpr shape
        self._count = 0
        # Constants and run-time shape tensors, each stored once: equal arrays (dtype, shape and
        # bytes) share one initializer, e.g. the weights that both passes of a local-edit export
        # fold, or the shapes and axes of every layer.
        self._stored: Dict[tuple, str] = {}

    # -- names, constants, shapes ------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str = "const") -> str:
        value = np.asarray(value)
        key = (value.dtype.str, value.shape, hashlib.sha256(value.tobytes()).digest())
        if key not in self._stored:
            self._stored[key] = self.fresh(hint)
            self.initializers.append(numpy_helper.from_array(value, self._stored[key]))
        return self._stored[key]

    def node(self, op: str, inputs: Sequence[str], hint: str = None, **attrs) -> str:
        out = self.fresh(hint or op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], **attrs))
        return out

    def shape_tensor(self, shape) -> str:
        """int64[rank] tensor of `shape`; symbolic dims are read from the inputs at run time."""
        if _is_static(shape):
            return self.const(np.asarray(shape, np.int64), "shape")
        key = ("shape",) + tuple(str(d) for d in shape)
        if key not in self._stored:
            self._stored[key] = self._dynamic_shape(shape)
        return self._stored[key]

    def _dynamic_shape(self, shape) -> str:
        parts = []
        for d in shape:
            if isinstance(d, (int, np.integer)):
                parts.append(self.const(np.asarray([d], np.int64), "dim"))
            elif str(d) in self.dim_tensors:
                parts.append(self.dim_tensors[str(d)])
            else:
                raise NotImplementedError(f"shape {shape}: only a plain symbolic batch dim is "
                                          f"supported, not {d}")
        return self.node("Concat", parts, "shape", axis=0)

    def register_input(self, name: str, aval) -> None:
        """Remembers where each symbolic dim of a graph input can be read at run time."""
        for axis, d in enumerate(aval.shape):
            if not isinstance(d, (int, np.integer)) and str(d) not in self.dim_tensors:
                self.dim_tensors[str(d)] = self.node("Shape", [name], "batch", start=axis,
                                                     end=axis + 1)

    # -- the walk ----------------------------------------------------------------------------
    def run(self, jaxpr, consts, inputs: Sequence) -> list:
        """Converts `jaxpr`; inputs/consts/outputs are ('const', array) or ('tensor', name).

        A constant's array may be smaller than its jaxpr shape, with unit dims where that shape
        has larger ones (a pending broadcast): consumers broadcast it, or expand it when folded.
        """
        env = {}

        def read(atom):
            if isinstance(atom, jax.extend.core.Literal):
                return ("const", np.asarray(atom.val, atom.aval.dtype))
            return env[atom]

        for var, value in zip(jaxpr.constvars, consts):
            env[var] = ("const", value)
        for var, value in zip(jaxpr.invars, inputs):
            env[var] = value
        for eqn in jaxpr.eqns:
            args = [read(a) for a in eqn.invars]
            constant = all(kind == "const" for kind, _ in args) and all(
                _is_static(v.aval.shape) for v in eqn.outvars)
            if constant and _grows(eqn, args):
                results = [self._unfolded(eqn, args)]
            elif constant:  # depends on no model input: evaluate now, store the result
                params = eqn.primitive.get_bind_params(eqn.params)
                outs = eqn.primitive.bind(*[_full(v, a.aval) for (_, v), a in zip(args, eqn.invars)],
                                          **params)
                outs = outs if eqn.primitive.multiple_results else [outs]
                results = [("const", o) for o in outs]  # numpy only when stored (keys stay keys)
            elif eqn.primitive.name in _CALLS:
                inner, inner_consts = _inner_jaxpr(eqn)
                results = self.run(inner, inner_consts, args)
            else:
                results = [("tensor", self.emit(eqn, args))]
            for var, value in zip(eqn.outvars, results):
                env[var] = value
        return [read(v) for v in jaxpr.outvars]

    def _unfolded(self, eqn, args):
        """The value of a growing constant equation (`_grows`) without storing it in full: a
        pending broadcast where the operands' own shapes broadcast to a small result, else a node
        (an outer product such as noise [1, H, W, 1] times strength [1, 1, 1, C])."""
        if eqn.primitive.name == "broadcast_in_dim":
            operand = np.asarray(args[0][1])
            return ("const", np.reshape(operand, _unit_shape(eqn, operand.shape)))
        shape = np.broadcast_shapes(*(np.shape(v) for _, v in args))
        if _outgrows(shape, args):
            return ("tensor", self.emit(eqn, args))
        params = eqn.primitive.get_bind_params(eqn.params)
        return ("const", eqn.primitive.bind(
            *[np.broadcast_to(np.asarray(v), shape) for _, v in args], **params))

    def as_tensor(self, value) -> str:
        kind, v = value
        return self.const(v) if kind == "const" else v

    def runtime_shape(self, value, aval) -> tuple:
        kind, v = value
        return tuple(np.shape(v)) if kind == "const" else self.partial.get(v, tuple(aval.shape))

    def materialize(self, value, aval):
        """`value` with exactly the shape of `aval` (expanding a pending broadcast)."""
        if [str(d) for d in self.runtime_shape(value, aval)] == [str(d) for d in aval.shape]:
            return value
        return ("tensor", self.node("Expand", [self.as_tensor(value), self.shape_tensor(aval.shape)]))

    def _broadcast_result(self, out: str, eqn, args) -> str:
        """Records the run-time shape of an elementwise op's output (numpy broadcasting)."""
        shapes = [self.runtime_shape(a, v.aval) for a, v in zip(args, eqn.invars)]
        rank = max(len(s) for s in shapes)
        result = []
        for axis in range(rank):
            dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
            sized = [d for d in dims if str(d) != "1"]
            result.append(sized[0] if sized else 1)
        if [str(d) for d in result] != [str(d) for d in eqn.outvars[0].aval.shape]:
            self.partial[out] = tuple(result)
        return out

    def emit(self, eqn, args: list) -> str:
        """ONNX node(s) for one equation with at least one run-time input; returns the output."""
        name = eqn.primitive.name
        if name in _BROADCASTING:
            return self._broadcast_result(self._emit(eqn, args), eqn, args)
        if name == "broadcast_in_dim":  # only align ranks; consumers broadcast or expand it
            return self._align_rank(eqn, args[0])
        args = [self.materialize(a, v.aval) for a, v in zip(args, eqn.invars)]
        return self._emit(eqn, args)

    def _align_rank(self, eqn, value) -> str:
        shape = eqn.params["shape"]
        current = self.runtime_shape(value, eqn.invars[0].aval)
        unit = _unit_shape(eqn, current)
        kind, v = value
        if kind == "const":
            out = self.const(np.reshape(np.asarray(v), unit))
        elif len(current) != len(shape):
            out = self.node("Reshape", [v, self.shape_tensor(unit)])
        else:
            out = v
        if [str(d) for d in unit] != [str(d) for d in shape]:
            self.partial[out] = tuple(unit)
        return out

    def _emit(self, eqn, args: list) -> str:
        name, p = eqn.primitive.name, eqn.params
        if name == "gather":
            return self._gather(eqn, self.as_tensor(args[0]), args[1])
        x = [self.as_tensor(a) for a in args]
        in_avals = [v.aval for v in eqn.invars]
        out_aval = eqn.outvars[0].aval
        if name in _ELEMENTWISE:
            return self.node(_ELEMENTWISE[name], x)
        if name == "ne":
            return self.node("Not", [self.node("Equal", x)])
        if name == "rsqrt":
            return self.node("Reciprocal", [self.node("Sqrt", x)])
        if name in ("integer_pow", "square"):
            power = p.get("y", 2)
            if power == 2:
                return self.node("Mul", [x[0], x[0]])
            return self.node("Pow", [x[0], self.const(np.asarray(power, out_aval.dtype))])
        if name == "convert_element_type":
            if in_avals[0].dtype == p["new_dtype"]:
                return self.node("Identity", x)
            return self.node("Cast", x, to=helper.np_dtype_to_tensor_dtype(np.dtype(p["new_dtype"])))
        if name == "select_n":  # select_n(pred, case0, case1): case1 where pred
            if len(x) != 3 or in_avals[0].dtype != np.bool_:
                raise NotImplementedError("select_n: only boolean two-way selects")
            return self.node("Where", [x[0], x[2], x[1]])
        if name == "clamp":  # clamp(lo, x, hi)
            return self.node("Min", [self.node("Max", [x[1], x[0]]), x[2]])
        if name in ("reduce_sum", "reduce_max", "reduce_min"):
            axes = [int(a) for a in p["axes"]]
            if name == "reduce_sum":
                return self.node("ReduceSum", [x[0], self.const(np.asarray(axes, np.int64))],
                                 keepdims=0)
            return self.node("ReduceMax" if name == "reduce_max" else "ReduceMin", x[:1],
                             axes=axes, keepdims=0)
        if name == "reshape":
            if p.get("dimensions") is not None:
                raise NotImplementedError("reshape with dimensions")
            if [str(d) for d in eqn.invars[0].aval.shape] == [str(d) for d in p["new_sizes"]]:
                return self.node("Identity", x)
            return self.node("Reshape", [x[0], self.shape_tensor(p["new_sizes"])])
        if name == "squeeze":
            axes = np.asarray(p["dimensions"], np.int64)
            return self.node("Squeeze", [x[0], self.const(axes)])
        if name == "transpose":
            return self.node("Transpose", x, perm=[int(a) for a in p["permutation"]])
        if name == "concatenate":
            return self.node("Concat", x, axis=int(p["dimension"]))
        if name == "slice":
            rank = len(p["start_indices"])
            steps = p["strides"] or (1,) * rank
            return self.node("Slice", [x[0], self.const(np.asarray(p["start_indices"], np.int64)),
                                       self.const(np.asarray(p["limit_indices"], np.int64)),
                                       self.const(np.arange(rank, dtype=np.int64)),
                                       self.const(np.asarray(steps, np.int64))])
        if name == "pad":
            config = p["padding_config"]
            if any(interior for _, _, interior in config) or any(
                    lo < 0 or hi < 0 for lo, hi, _ in config):
                raise NotImplementedError("pad: only non-negative edge padding")
            pads = [int(lo) for lo, _, _ in config] + [int(hi) for _, hi, _ in config]
            return self.node("Pad", [x[0], self.const(np.asarray(pads, np.int64)), x[1]],
                             mode="constant")
        if name == "dot_general":
            return self._dot_general(eqn, x)
        if name == "conv_general_dilated":
            return self._conv(eqn, x)
        raise NotImplementedError(f"JAX primitive '{name}' has no ONNX mapping in "
                                  f"stylegan_jax/export/onnx_graph.py")

    def _gather(self, eqn, operand: str, indices) -> str:
        """Constant-index gathers (what `x[:, i]` and `x[:, :k]` trace to): Slice + Squeeze."""
        dnums, sizes = eqn.params["dimension_numbers"], eqn.params["slice_sizes"]
        kind, start_values = indices
        if kind != "const":
            raise NotImplementedError("gather with run-time indices")
        start_values = start_values.reshape(-1)
        if dnums.operand_batching_dims or len(start_values) != len(dnums.start_index_map):
            raise NotImplementedError("gather: only one static index vector")
        axes = [int(a) for a in dnums.start_index_map]
        starts = [int(start_values[i]) for i in range(len(axes))]
        ends = [s + int(sizes[a]) for s, a in zip(starts, axes)]
        out = self.node("Slice", [operand, self.const(np.asarray(starts, np.int64)),
                                  self.const(np.asarray(ends, np.int64)),
                                  self.const(np.asarray(axes, np.int64))])
        if dnums.collapsed_slice_dims:
            out = self.node("Squeeze", [out, self.const(np.asarray(
                dnums.collapsed_slice_dims, np.int64))])
        return out

    def _dot_general(self, eqn, x: List[str]) -> str:
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        lhs_rank, rhs_rank = (len(v.aval.shape) for v in eqn.invars)
        if not lb and not rb and tuple(lc) == (lhs_rank - 1,) and tuple(rc) == (0,) and rhs_rank == 2:
            return self.node("MatMul", x)  # the dense layers: [..., k] @ [k, m]
        letters = iter("abcdefghijklmnopqrstuvwxyz")
        lhs = [next(letters) for _ in range(lhs_rank)]
        rhs = [next(letters) for _ in range(rhs_rank)]
        for l, r in list(zip(lc, rc)) + list(zip(lb, rb)):
            rhs[r] = lhs[l]
        out = [lhs[i] for i in lb] + [c for i, c in enumerate(lhs) if i not in lc and i not in lb]
        out += [c for i, c in enumerate(rhs) if i not in rc and i not in rb]
        equation = f"{''.join(lhs)},{''.join(rhs)}->{''.join(out)}"
        return self.node("Einsum", x, equation=equation)

    def _conv(self, eqn, x: List[str]) -> str:
        p = eqn.params
        dnums = p["dimension_numbers"]
        if p["batch_group_count"] != 1:
            raise NotImplementedError("conv with batch_group_count")
        lhs = self.node("Transpose", [x[0]], perm=[int(a) for a in dnums.lhs_spec])  # -> NCHW
        kernel = self.node("Transpose", [x[1]], perm=[int(a) for a in dnums.rhs_spec])  # -> OIHW
        pads = [list(map(int, pad)) for pad in p["padding"]]
        if any(lo < 0 or hi < 0 for lo, hi in pads):
            raise NotImplementedError("conv with negative padding")
        dilation = [int(d) for d in p["lhs_dilation"]]
        if any(d > 1 for d in dilation):
            # Input dilation (a transposed conv): put d-1 zeros after every pixel, then drop the
            # d-1 trailing ones again from the high-side padding.
            aval = eqn.invars[0].aval
            n, c = aval.shape[dnums.lhs_spec[0]], aval.shape[dnums.lhs_spec[1]]
            spatial = [aval.shape[a] for a in dnums.lhs_spec[2:]]
            expanded = [n, c] + [v for s in spatial for v in (s, 1)]
            lhs = self.node("Reshape", [lhs, self.shape_tensor(expanded)])
            zeros = [0] * len(expanded) + [0, 0] + [v for d in dilation for v in (0, d - 1)]
            lhs = self.node("Pad", [lhs, self.const(np.asarray(zeros, np.int64))], mode="constant")
            lhs = self.node("Reshape", [lhs, self.shape_tensor(
                [n, c] + [s * d for s, d in zip(spatial, dilation)])])
            for pad, d in zip(pads, dilation):
                pad[1] -= d - 1
            if any(hi < 0 for _, hi in pads):
                raise NotImplementedError("transposed conv with cropping")
        y = self.node("Conv", [lhs, kernel], strides=[int(s) for s in p["window_strides"]],
                      pads=[lo for lo, _ in pads] + [hi for _, hi in pads],
                      dilations=[int(d) for d in p["rhs_dilation"]],
                      group=int(p["feature_group_count"]))
        inverse = [0] * len(dnums.out_spec)
        for onnx_axis, jax_axis in enumerate(dnums.out_spec):
            inverse[jax_axis] = onnx_axis
        return self.node("Transpose", [y], perm=inverse)


def jaxpr_to_onnx(closed_jaxpr, input_names: Sequence[str], output_names: Sequence[str],
                  graph_name: str = "model", doc_string: str = "") -> onnx.ModelProto:
    """An ONNX model computing `closed_jaxpr` (from jax.make_jaxpr on ShapeDtypeStructs).

    Symbolic dims of the inputs (e.g. the batch) become named dynamic ONNX dims.
    """
    jaxpr = closed_jaxpr.jaxpr
    if len(input_names) != len(jaxpr.invars) or len(output_names) != len(jaxpr.outvars):
        raise ValueError(f"{len(jaxpr.invars)} inputs / {len(jaxpr.outvars)} outputs in the "
                         f"function, but {len(input_names)} / {len(output_names)} names given")
    conv = _Converter()

    def value_info(name, aval):
        dims = [int(d) if isinstance(d, (int, np.integer)) else str(d) for d in aval.shape]
        return helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(np.dtype(aval.dtype)), dims)

    for name, var in zip(input_names, jaxpr.invars):
        conv.register_input(name, var.aval)
    outs = conv.run(jaxpr, closed_jaxpr.consts, [("tensor", n) for n in input_names])
    for name, value, var in zip(output_names, outs, jaxpr.outvars):
        value = conv.materialize(value, var.aval)
        conv.nodes.append(helper.make_node("Identity", [conv.as_tensor(value)], [name]))
    graph = helper.make_graph(
        conv.nodes, graph_name, [value_info(n, v.aval) for n, v in zip(input_names, jaxpr.invars)],
        [value_info(n, v.aval) for n, v in zip(output_names, jaxpr.outvars)], conv.initializers,
        doc_string=doc_string)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="stylegan_jax")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
