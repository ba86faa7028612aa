"""A faster CPU forward pass: a frozen TorchScript copy of the network that also returns the target
layer's output.

Forward hooks do not survive TorchScript freezing, so the copy is built from a torch.fx feature
extractor whose outputs are the logits and the target layer's output, then traced, frozen and
passed through ``torch.jit.optimize_for_inference`` (batch norm folded into the convolutions,
weights prepacked for oneDNN). On this project's 2-core reference machine (768x432 frames, short
side 224) that made the forward 1.5x faster for mobilenet_v3_large, resnet50 and regnet_y_800mf,
1.9x for mobilenet_v2, 1.6x for densenet121 and 1.2x for resnet18; EfficientNet and ConvNeXt got
slower, VGG and the transformers no faster, so only the families that gained are traced.

In bf16 (a CPU with bf16 kernels: AVX512-BF16, AMX) the copy is frozen but not passed through
``optimize_for_inference`` (which folds batch norm in bf16: no faster, and no longer the eager
network's numbers), and the network is channels-last: mobilenet_v3_large 11.2 ms against 17.4
eager and 16.9 for the fp32 copy, resnet50 81 against 88 and 142.

Every copy is built and checked against the eager network (with
:class:`~eigencam_live.models.ActivationCapture`) on one frame, the first of the batch it was asked
for: the trace and its checks run the network about five times, and on a batch of 32 frames
(``annotate -b 32``, resnet50) that took over a minute, during which a stop could not be heard. A
copy serves every batch size, each checked once: its first frame gives what it gave alone. A copy
that does not agree is discarded and the eager path is used.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from eigencam_live.models import ActivationCapture

__all__ = ["TRACED_FAMILIES", "TracedForward", "build_traced"]

#: Model-name prefixes whose CPU forward ``optimize_for_inference`` makes faster.
TRACED_FAMILIES = ("resnet", "resnext", "wide_resnet", "mobilenet", "regnet", "densenet")


class TracedForward:
    """``x (B, 3, h, w) -> (logits, layer output)`` through a frozen, optimised TorchScript copy.

    Valid for the ``(3, h, w)`` shape and the dtype it was built with (the trace records shapes),
    at any batch size: each new one is checked once (:meth:`__call__`).
    """

    def __init__(self, module: torch.jit.ScriptModule, shape: tuple[int, ...]) -> None:
        self.module = module
        self.shape = shape  # (3, h, w)
        self.batches = {1}  # the batch sizes checked

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The copy's outputs for ``x``; ``None`` where it fails, or where, at a batch size not
        seen before, it gives another number of rows, or its first or last frame's differ from
        what it gives for that frame alone (a copy that baked its batch size in)."""
        batch = x.shape[0]
        try:
            out = self.module(x)
            if batch not in self.batches:
                if out["logits"].shape[0] != batch or out["fmap"].shape[0] != batch:
                    return None
                for row in {0, batch - 1}:
                    alone = self.module(x[row : row + 1])
                    if not (_agree(out["logits"][row : row + 1], alone["logits"])
                            and _agree(out["fmap"][row : row + 1], alone["fmap"])):
                        return None
                self.batches.add(batch)
        except Exception:  # noqa: BLE001 - the eager network runs it (and says what is wrong)
            return None
        return out["logits"], out["fmap"]


def _agree(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-3) -> bool:
    scale = b.abs().max().clamp_min(1e-30)
    return a.shape == b.shape and bool(((a - b).abs().max() / scale) <= tol)


def _layer_copied(extractor: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """``extractor`` returning a copy of the layer's output made as soon as it is computed: a
    network that changes it in place afterwards (densenet's ``F.relu(features, inplace=True)``)
    otherwise returned the changed values, and the copy was refused (the eager hook copies too)."""
    graph = extractor.graph
    out = next(node for node in graph.nodes if node.op == "output")
    fmap = out.args[0]["fmap"]
    with graph.inserting_after(fmap):
        copied = graph.call_method("clone", (fmap,))
    out.args = ({**out.args[0], "fmap": copied},)
    extractor.recompile()
    return extractor


def build_traced(net: nn.Module, layer: str, example: torch.Tensor) -> TracedForward | None:
    """A :class:`TracedForward` of ``net`` for the shape of ``example``'s frames, built on its first
    frame, or ``None`` when the network cannot be traced this way or the copy does not reproduce the
    eager logits and layer output."""
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    example = example[:1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, eval_nodes = get_graph_node_names(net)
            extractor = _layer_copied(create_feature_extractor(net, return_nodes={layer: "fmap",
                                                                                  eval_nodes[-1]: "logits"}).eval())
            with torch.no_grad():
                traced = torch.jit.trace(extractor, example, strict=False)
                module = torch.jit.freeze(traced.eval())
                if example.dtype == torch.float32:  # in bf16 it folds batch norm in bf16: no faster, not exact
                    module = torch.jit.optimize_for_inference(module)
                got = module(example)
                got = module(example)  # the first runs of a frozen module still rewrite its graph
            with torch.inference_mode(), ActivationCapture(net, layer) as cap:
                logits = net(example)
                raw = cap.outputs[layer]
    except Exception:  # fx cannot trace it, TorchScript rejects an op, ...: the eager path stays
        return None
    tensors = (got["logits"], logits, got["fmap"], raw)
    if not all(isinstance(t, torch.Tensor) for t in tensors) or not _agree(got["logits"], logits) \
            or not _agree(got["fmap"], raw):
        return None  # outputs that are not plain tensors (a dict, a tuple) stay eager
    return TracedForward(module, tuple(example.shape[1:]))
