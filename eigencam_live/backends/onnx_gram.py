"""What the exported graph computes for the exact Eigen-CAM solver beside the activations: the
ONNX nodes that give it (:func:`add_gram`) and the check of its outputs against the activations
(:func:`gram_agrees`, :func:`agree`)."""

from __future__ import annotations

import numpy as np
import torch

from eigencam_live.cam import EXACT_MAX_DIM

__all__ = ["add_gram", "agree", "gram_agrees"]

#: The outputs :func:`add_gram` adds, and their ranks.
_GRAM_OUTPUTS = (("gram", 3), ("gram_sums", 2), ("gram_raw", 1))


def add_gram(model, nchw: bool, limit: int = EXACT_MAX_DIM) -> None:
    """Give an exported graph (``x -> logits, fmap``) a second input, ``want_gram`` (a bool), and
    three outputs computed by the runtime while the activations are in its caches, everything the
    exact Eigen-CAM step needs from them (see :func:`eigencam_live.cam.solvers.gram_cpu`):

    * ``gram``: the Gram matrix of the map's positions with its channels centred, ``X_c X_c^T``
      ``(B, HW, HW)`` (the one large product of the step);
    * ``gram_sums``: the centred channel sums at each position, ``X_c 1`` ``(B, HW)`` (the sign rule);
    * ``gram_raw``: the activations' energy ``||X||^2`` ``(B,)`` (the float32 checks).

    They are computed only where they are asked for and the exact solver takes them
    (``HW <= min(C, limit)``, an NCHW map); elsewhere they are empty, at no cost (an ``If`` node:
    ONNX Runtime runs every node of a graph whatever outputs are asked for). Edits ``model`` (an
    ``onnx.ModelProto``) in place."""
    from onnx import TensorProto, helper

    graph = model.graph

    def empties(prefix: str) -> list:
        return [helper.make_node("Constant", [], [f"{prefix}{name}"], value=helper.make_tensor(
            "empty", TensorProto.FLOAT, [0] * rank, [])) for name, rank in _GRAM_OUTPUTS]

    def outputs(names) -> list:
        return [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names]

    empty = helper.make_graph(empties("no_"), "no_gram", [], outputs(f"no_{name}" for name, _ in _GRAM_OUTPUTS))
    centred = helper.make_graph([
        helper.make_node("ReduceMean", ["fmap"], ["gram_mean"], axes=[2, 3], keepdims=1),
        helper.make_node("Sub", ["fmap", "gram_mean"], ["gram_centred"]),
        helper.make_node("Reshape", ["gram_centred", "gram_flat_shape"], ["gram_flat"]),  # (B, C, HW)
        helper.make_node("Transpose", ["gram_flat"], ["gram_flat_t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["gram_flat_t", "gram_flat"], ["gram_full"]),
        helper.make_node("ReduceSum", ["gram_flat", "gram_axis1"], ["gram_sums_full"], keepdims=0),  # (B, HW)
        helper.make_node("ReduceSumSquare", ["fmap"], ["gram_raw_full"], axes=[1, 2, 3], keepdims=0),  # (B,)
    ], "gram", [], outputs(("gram_full", "gram_sums_full", "gram_raw_full")))
    graph.input.append(helper.make_tensor_value_info("want_gram", TensorProto.BOOL, []))
    graph.output.extend(outputs(name for name, _ in _GRAM_OUTPUTS))
    if not nchw:  # tokens, NHWC: no Gram, and no node that assumes a rank-4 map (ORT infers both branches)
        graph.node.extend(empties(""))
        return
    graph.initializer.extend([
        helper.make_tensor("gram_axis1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("gram_flat_shape", TensorProto.INT64, [3], [0, 0, -1]),
        helper.make_tensor("gram_limit", TensorProto.INT64, [], [limit]),
        helper.make_tensor("gram_nchw", TensorProto.BOOL, [], [nchw]),
        helper.make_tensor("gram_i1", TensorProto.INT64, [], [1]),
        helper.make_tensor("gram_i2", TensorProto.INT64, [], [2]),
        helper.make_tensor("gram_i3", TensorProto.INT64, [], [3]),
    ])
    graph.node.extend([
        helper.make_node("Shape", ["fmap"], ["gram_shape"]),
        helper.make_node("Gather", ["gram_shape", "gram_i1"], ["gram_c"]),
        helper.make_node("Gather", ["gram_shape", "gram_i2"], ["gram_h"]),
        helper.make_node("Gather", ["gram_shape", "gram_i3"], ["gram_w"]),
        helper.make_node("Mul", ["gram_h", "gram_w"], ["gram_n"]),
        helper.make_node("Min", ["gram_c", "gram_limit"], ["gram_most"]),
        helper.make_node("LessOrEqual", ["gram_n", "gram_most"], ["gram_fits"]),
        helper.make_node("And", ["gram_fits", "want_gram"], ["gram_wanted"]),
        helper.make_node("And", ["gram_wanted", "gram_nchw"], ["gram_run"]),
        helper.make_node("If", ["gram_run"], [name for name, _ in _GRAM_OUTPUTS], then_branch=centred,
                         else_branch=empty),
    ])


def gram_agrees(found: list[np.ndarray], fmap: torch.Tensor | np.ndarray) -> bool:
    """Whether the graph's :func:`add_gram` outputs are those of ``(B, C, H, W)`` maps ``fmap``.

    The sums are held to the size of what they add up (``sum |X_c|`` over the channels), not to
    their own: where the channels' sum hardly varies over the positions (a softmax over channels),
    ``X_c 1`` is rounding residue on either side."""
    a = torch.as_tensor(fmap).detach().double().flatten(2)
    c = a - a.mean(dim=2, keepdim=True)
    matrix, sums, raw = found
    return (agree(matrix, (c.mT @ c).numpy()) and agree(raw, a.square().sum(dim=(1, 2)).numpy())
            and agree(sums, c.sum(dim=1).numpy(), scale=float(c.abs().sum(dim=1).max())))


def agree(a: np.ndarray, b: torch.Tensor | np.ndarray, tol: float = 1e-3, scale: float | None = None) -> bool:
    """Whether ``a`` is ``b`` within ``tol`` of ``scale`` (default: ``b``'s largest magnitude)."""
    b = b if isinstance(b, np.ndarray) else b.detach().float().numpy()
    scale = max(float(np.abs(b).max()) if scale is None else scale, 1e-30)
    return a.shape == b.shape and float(np.abs(a - b).max()) / scale <= tol
