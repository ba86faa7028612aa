"""ONNX forms that torch's exporter lacks for a graph of any input size, used while exporting.

``nn.AdaptiveAvgPool2d`` to a size other than 1 x 1 (VGG's and AlexNet's ``(7, 7)`` before their
classifier) has no ONNX form when the height and width are dynamic: the exporter refuses it
("input size not accessible") and the torch backend had to run those networks. Here it is written
as what it is, a weighted sum: the output row ``i`` of an input of ``n`` rows averages rows
``floor(i n / size)`` to ``ceil((i + 1) n / size) - 1`` (torch's bins), which is a ``(size, n)``
matrix built in the graph from the input's shape, applied to the height and then to the width.
"""

from __future__ import annotations

import contextlib
import threading

import torch

__all__ = ["dynamic_forms"]

_lock = threading.Lock()
_users = 0
_ours = False  # whether the registration in place is this module's


@contextlib.contextmanager
def dynamic_forms(opset: int):
    """Inside, torch's ONNX exporter (the TorchScript one) uses the forms of this module. The
    registration is the process's, so it is made by the first of several threads exporting at once
    and removed by the last."""
    global _users, _ours
    with _lock:
        if _users == 0:
            _ours = not _overridden("aten::adaptive_avg_pool2d", opset)  # a form of the user's own stays theirs
            if _ours:
                torch.onnx.register_custom_op_symbolic("aten::adaptive_avg_pool2d", _adaptive_avg_pool2d, opset)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _ours:
                torch.onnx.unregister_custom_op_symbolic("aten::adaptive_avg_pool2d", opset)


def _overridden(op: str, opset: int) -> bool:
    """Whether someone in the process registered a form of ``op`` of their own (torch has no
    public way to ask: its registry's, where it is; else taken as no)."""
    try:
        try:
            from torch.onnx._internal.torchscript_exporter import registration
        except ImportError:  # torch before 2.9
            from torch.onnx._internal import registration
        group = registration.registry.get_function_group(op)
        return group is not None and bool(group._functions.overridden(opset))
    except (ImportError, AttributeError):
        return False


def _adaptive_avg_pool2d(g, x, output_size):
    from torch.onnx import symbolic_helper

    sizes = symbolic_helper._maybe_get_const(output_size, "is")
    if all(size == 1 for size in sizes):
        return g.op("GlobalAveragePool", x)
    shape = g.op("Shape", x)
    out = x
    for axis, size in zip((-2, -1), sizes, strict=True):
        n = g.op("Gather", shape, _int64(g, axis))  # a scalar: this axis's length
        pool = g.op("CastLike", _bins(g, n, size), x)  # (size, n)
        # (size, n) @ (B, C, n, W) along the height; (B, C, H', n) @ (n, size) along the width
        out = g.op("MatMul", pool, out) if axis == -2 else g.op("MatMul", out, g.op("Transpose", pool, perm_i=[1, 0]))
    return out


def _bins(g, n, size: int):
    """``(size, n)`` float32: row ``i`` is ``1 / count`` on torch's bin ``i`` of ``n`` positions, else 0."""
    i = _int64(g, list(range(size)), shape=(size, 1))
    start = g.op("Div", g.op("Mul", i, n), _int64(g, size))  # int64: floor for these non-negative values
    end = g.op("Div", g.op("Add", g.op("Mul", g.op("Add", i, _int64(g, 1)), n), _int64(g, size - 1)), _int64(g, size))
    j = g.op("Range", _int64(g, 0), n, _int64(g, 1))  # (n,)
    inside = g.op("And", g.op("GreaterOrEqual", j, start), g.op("Less", j, end))  # (size, n)
    weights = g.op("Cast", inside, to_i=1)  # float32
    return g.op("Div", weights, g.op("ReduceSum", weights, _int64(g, [1]), keepdims_i=1))


def _int64(g, value, shape: tuple[int, ...] | None = None):
    tensor = torch.tensor(value, dtype=torch.int64)
    return g.op("Constant", value_t=tensor if shape is None else tensor.reshape(shape))
