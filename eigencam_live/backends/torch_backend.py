"""The torch backend: a torch ``nn.Module`` on the CPU or CUDA (see :mod:`eigencam_live.backends`).

Eager with a forward hook on the target layer (:class:`~eigencam_live.models.ActivationCapture`),
or on the CPU in fp32 or bf16 through a traced, frozen copy that returns the layer's output as a second
result (:mod:`.traced`). On CUDA, and in bf16 on the CPU, the network is channels_last, in the
engine's precision, with an fp32 master copy of the weights kept on the host so that going back to fp32 is exact.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch

from eigencam_live.errors import LayerNotFoundError
from eigencam_live.models import (
    MODELS,
    ActivationCapture,
    Layer,
    LoadedModel,
    feature_layers,
    find_layer,
    to_feature_map,
)
from eigencam_live.results import batched_scores, class_scores, score_output

from .traced import TRACED_FAMILIES, TracedForward, build_traced

__all__ = ["TorchBackend"]

_MAX_TRACED = 4  # traced copies kept (one per frame shape and layer); the oldest is dropped


class TorchBackend:
    """A torch network on one device, in one precision, with one target layer.

    Args:
        loaded: the model (moved and cast in place).
        layer: the target layer, a dotted module name.
        device, dtype: where and in which precision the network runs.
        optimize: on the CPU in fp32 or bf16, run the traced copy of the families it makes faster.
        master: the fp32 weights of a network that was cast to half precision before (kept so
            that fp32 can be had back exactly).
    """

    name = "torch"

    def __init__(self, loaded: LoadedModel, layer: str, device: torch.device, dtype: torch.dtype, *,
                 optimize: bool = True, master: dict[str, torch.Tensor] | None = None) -> None:
        self.loaded = loaded
        self.optimize = optimize
        self.layer = layer
        self._master = master
        self.device, self.dtype = device, dtype
        self.warning: str | None = None
        self.place(device, dtype)
        #: whether the last forward pass ran through the traced copy
        self.traced = False
        self.preparing = False  # per input shape here: prepares()

    def prepares(self, shape: tuple[int, ...]) -> bool:
        """Whether a forward pass of ``(C, h, w)`` inputs builds a traced copy first (for the layer
        in use, at this precision): the network runs about five times, 1.4 s for mobilenet_v3_large
        and 1.8 s for resnet50 in fp32 on a 2-core CPU, 3.8 and 6.8 s in bf16 without its kernels."""
        return self.optimize and self.can_trace and (self._layer, tuple(shape)) not in self._traced

    @property
    def running(self) -> str:
        """What ran the last forward pass: ``torch (traced)`` or ``torch``."""
        return "torch (traced)" if self.traced else "torch"

    @property
    def layer(self) -> str:
        return self._layer

    @layer.setter
    def layer(self, name: str) -> None:
        find_layer(self.loaded.net, name)  # raises LayerNotFoundError with close matches
        self._layer = name

    def place(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move the network to ``device`` and ``dtype`` (traced copies are dropped)."""
        self._traced: dict[tuple, TracedForward | None] = {}
        net = self.loaded.net
        if dtype != torch.float32 and self._master is None:
            # Casting weights in place is lossy: keep an fp32 copy so fp32 can be had back exactly.
            self._master = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
        net = net.to(device=device, dtype=torch.float32 if self._master is not None else dtype)
        if self._master is not None:
            net.load_state_dict(self._master)
            net = net.to(dtype=dtype)
        if device.type == "cuda" or dtype == torch.bfloat16:
            # cuDNN's and oneDNN's half-precision convolutions want NHWC: on this project's CPU
            # (AVX512-BF16) bf16 mobilenet_v3_large took 17.4 ms channels-last, 22.7 ms without
            net = net.to(memory_format=torch.channels_last)
        else:  # back from bf16: fp32's kernels (and its traced copy) were measured channels-first
            net = net.to(memory_format=torch.contiguous_format)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.loaded.net = net.eval()
        self.device, self.dtype = device, dtype
        self.warning = slow_bf16(device, dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | list[dict], torch.Tensor]:
        """``x (B, 3, h, w)`` on :attr:`device` -> ``(logits (B, classes), activations (B, C, h', w'))``;
        a detector gives its per-image dicts of ``boxes``, ``labels`` and ``scores`` for logits."""
        traced = self._traced_for(x)
        found = traced(x) if traced is not None else None
        if traced is not None and found is None:  # not the same numbers at this batch size: dropped
            self._traced[(self._layer, tuple(x.shape[1:]))] = None
        self.traced = found is not None
        size, prefix, batch = tuple(x.shape[-2:]), self.loaded.prefix_tokens, x.shape[0]
        if found is not None:
            logits, raw = found
            return logits, to_feature_map(raw, size, prefix, batch)
        with ActivationCapture(self.loaded.net, self._layer) as cap:
            logits = self.loaded.net(x)
            return _outputs(logits, self.loaded.scores_at), cap.map(size, self._layer, prefix, batch)

    def forward_gram(self, x: torch.Tensor) -> tuple[torch.Tensor | list[dict], torch.Tensor, None]:
        """:meth:`forward` and ``None``: the Eigen-CAM solver computes the Gram matrix itself."""
        return (*self.forward(x), None)

    def probe(self, layer: str, size: tuple[int, int]) -> tuple[int, int, int]:
        """``(C, h', w')`` of ``layer``'s feature map for a ``size = (h, w)`` input, from one forward
        pass of a blank image (the shapes the network reports, not a trial on real frames).

        Raises:
            LayerNotFoundError: no such layer, or its output is not a feature map (a vector, ...).
        """
        find_layer(self.loaded.net, layer)
        x = torch.zeros((1, self.loaded.channels, *size), device=self.device, dtype=self.dtype)
        with torch.inference_mode(), ActivationCapture(self.loaded.net, layer) as cap:
            out = self.loaded.net(x)
            with contextlib.suppress(LayerNotFoundError):  # no scores of any kind: maps alone
                out = _outputs(out, self.loaded.scores_at)  # the class scores as the frames' are read ((B, K, 1, 1) too)
            if isinstance(out, torch.Tensor):
                out = batched_scores(out, 1)
            if isinstance(out, torch.Tensor) and out.dim() == 2 and not self.loaded.headless:
                self.loaded.classes = int(out.shape[1])
            if layer not in cap.outputs:
                raise LayerNotFoundError(f"layer {layer!r} is not reached by the forward pass")
            try:
                fmap = cap.map(size, layer, self.loaded.prefix_tokens, batch=1)
            except LayerNotFoundError as exc:
                raise LayerNotFoundError(f"layer {layer!r}: {exc}") from None
        return tuple(int(d) for d in fmap.shape[1:])

    def feature_layers(self, size: tuple[int, int]) -> list[Layer]:
        """Every layer that gives a feature map for a ``size`` input, in forward order."""
        return feature_layers(self.loaded, size)

    @property
    def can_trace(self) -> bool:
        """Whether this network has a traced copy here: torchvision's classifiers of the families it
        speeds up (by name), on the CPU in fp32 or bf16."""
        name = self.loaded.spec.name
        return (self.device.type == "cpu" and self.dtype in (torch.float32, torch.bfloat16) and name in MODELS
                and name.startswith(TRACED_FAMILIES))

    def _traced_for(self, x: torch.Tensor) -> TracedForward | None:
        """The traced copy for the shape of these frames (any batch size), built on first use (CPU,
        fp32 or bf16, conv-BN families)."""
        if not (self.optimize and self.can_trace):
            return None
        key = (self._layer, tuple(x.shape[1:]))
        if key not in self._traced:
            if len(self._traced) >= _MAX_TRACED:
                self._traced.pop(next(iter(self._traced)))
            self._traced[key] = build_traced(self.loaded.net, self._layer, x)
        return self._traced[key]


def bf16_kernels() -> bool:
    """Whether this CPU has oneDNN's bf16 kernels (``False`` for a torch built without oneDNN,
    which registers no such check)."""
    try:
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def slow_bf16(device: torch.device, dtype: torch.dtype) -> str | None:
    """What to say of bf16 on a CPU without oneDNN's bf16 kernels (on x86 they need AVX-512; a trial
    ran it without a word: mobilenet_v3_large 625 ms a frame against fp32's 29 on an AVX2 AMD EPYC),
    else ``None``."""
    if device.type != "cpu" or dtype != torch.bfloat16 or bf16_kernels():
        return None
    return ("bf16 runs emulated on this CPU (it lacks the instructions of oneDNN's bf16 kernels): about 20x slower "
            "than fp32, for the same maps; fp32 precision (auto picks it) is the fast one here")


def _outputs(output: object, scores_at: int | None = None) -> torch.Tensor | list[dict]:
    """What the engine reads of a network's output: a detector's per-image dicts of boxes as they
    are; else the class scores: the tensor itself, or among a dict's, a named tuple's, a
    dataclass's, a tuple's or a list's tensors (models that also return embeddings, maps or other
    heads) the one :func:`~eigencam_live.results.score_output` picks (named so; in a tuple or a
    list, the one at ``scores_at`` where the loader found which
    (:func:`~eigencam_live.results.scores_in_lineage`), else
    the first of ``(B, K)`` shape), else the first (a backbone's map: no classes)."""
    if isinstance(output, list) and output and all(isinstance(o, dict) and "boxes" in o for o in output):
        return output
    if isinstance(output, torch.Tensor):
        found = output
    else:
        tensors = [(k, v) for k, v in _named(output) if isinstance(v, torch.Tensor)]
        if not tensors:
            raise LayerNotFoundError(f"the network returned {type(output).__name__}, not class scores (a tensor)")
        # a dict's, a named tuple's or a dataclass's names say which are scores; a tuple's shapes
        unnamed = tensors[0][0] is None
        if unnamed and scores_at is not None and scores_at < len(tensors):
            at = scores_at
        else:
            at = score_output(tensors, by_name=not unnamed)
        found = tensors[at or 0][1]
    squeezed = class_scores(found)  # a convolutional head's (B, K, 1, 1)
    return found if squeezed is None else squeezed


def _named(output: object) -> list[tuple[str | None, object]]:
    """The parts of a network's output with their names where it has them."""
    if isinstance(output, dict):  # Hugging Face's ModelOutput too
        return list(output.items())
    if isinstance(output, tuple) and hasattr(output, "_fields"):
        return list(zip(output._fields, output, strict=True))
    if isinstance(output, (tuple, list)):
        return [(None, v) for v in output]
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        return [(f.name, getattr(output, f.name)) for f in dataclasses.fields(output)]
    return []
