"""How a network runs: a batch of network inputs in, ``(outputs, activations)`` out.

A backend is the engine's only view of the network. :class:`~eigencam_live.engine.Engine` calls
``forward(x)`` with a preprocessed ``(B, 3, h, w)`` batch on the backend's ``device`` and gets the
network's outputs (logits ``(B, classes)``) and the target layer's activations as a
``(B, C, h', w')`` feature map, whatever layout the layer has inside the network. Every backend has
the same members: ``device``, ``dtype``, ``layer`` (settable: checks the name), ``running`` (what
ran the last forward, for display), ``warning`` (why it fell back, or ``None``), ``preparing``
(the next forward first builds something slow, e.g. an export), ``forward(x)``,
``forward_gram(x)`` (the same and a :class:`~eigencam_live.cam.Gram`, the centred Gram matrix of the
map's positions and the sums the sign rule reads, where the backend computes it beside the
activations, else ``None``: see :func:`eigencam_live.cam.solvers.gram_cpu`), ``probe(layer,
size)`` (the layer's map shape for an input size, from the network itself) and
``feature_layers(size)`` (every layer that gives a map, with its shape).

* :class:`TorchBackend`: torch, eager with a forward hook, or on the CPU a traced, frozen copy
  (:mod:`.traced`); fp16 + channels_last on CUDA.
* :class:`OnnxBackend`: ONNX Runtime on the CPU, the network exported on first use and cached.
* :class:`OnnxFileBackend`: ONNX Runtime on the CPU running an ONNX file (:mod:`.onnx_file`).

``auto`` picks ONNX Runtime on the CPU in fp32 (when installed) and torch elsewhere.
"""

from __future__ import annotations

import torch

from eigencam_live.errors import ConfigError
from eigencam_live.models import LoadedModel

from .export_cache import cache_dir
from .onnx_backend import OnnxBackend, onnxruntime_available
from .onnx_file import OnnxFile, OnnxFileBackend, load_onnx
from .torch_backend import TorchBackend

__all__ = [
    "BACKENDS",
    "OnnxBackend",
    "OnnxFileBackend",
    "TorchBackend",
    "cache_dir",
    "load_onnx",
    "make_backend",
    "resolve_backend",
]

BACKENDS = ("auto", "torch", "onnxruntime")


def resolve_backend(backend: str, device: torch.device, dtype: torch.dtype, *, onnx_file: bool = False,
                    detector: bool = False) -> str:
    """``auto`` -> ``onnxruntime`` on the CPU in fp32 when installed, else ``torch``; a detector runs
    with torch (its box decoding and NMS do not export). An explicit ``onnxruntime`` elsewhere, or
    an ONNX file anywhere but ONNX Runtime on the CPU in fp32, raises :class:`ConfigError`."""
    cpu_fp32 = device.type == "cpu" and dtype == torch.float32
    if detector:
        if backend == "onnxruntime":
            raise ConfigError("detectors run with torch: choose torch or auto", field="backend")
        if device.type == "cpu" and dtype != torch.float32:
            raise ConfigError("detectors run in fp32 on the CPU (their box selection has no bf16 kernel)",
                              field="precision")
        return "torch"
    if onnx_file:
        if backend == "torch":
            raise ConfigError("an ONNX file runs with onnxruntime, not torch", field="backend")
        if device.type != "cpu":
            raise ConfigError("an ONNX file runs on the CPU (ONNX Runtime): choose device cpu", field="device")
        if dtype != torch.float32:
            raise ConfigError("an ONNX file runs in the precision it was exported in (fp32, or fp16 inside the "
                              "file): leave --precision at fp32", field="precision")
        backend = "onnxruntime"
    if backend == "auto":
        return "onnxruntime" if cpu_fp32 and onnxruntime_available() else "torch"
    if backend == "onnxruntime":
        if not cpu_fp32:
            raise ConfigError("onnxruntime runs on the CPU in fp32; use torch for CUDA or bf16", field="backend")
        if not onnxruntime_available():
            raise ConfigError("onnxruntime is not installed (pip install onnxruntime onnx)", field="backend")
    return backend


def make_backend(kind: str, loaded: LoadedModel, layer: str, device: torch.device, dtype: torch.dtype, *,
                 optimize: bool = True, master: dict[str, torch.Tensor] | None = None) -> TorchBackend | OnnxBackend | OnnxFileBackend:
    """A backend of ``kind`` (resolved: ``torch`` or ``onnxruntime``) for ``loaded``; ``master``:
    the fp32 weights a previous backend kept (see :class:`TorchBackend`)."""
    if isinstance(loaded.net, OnnxFile):
        return OnnxFileBackend(loaded, layer)
    if kind == "onnxruntime":
        return OnnxBackend(loaded, layer, master=master)
    return TorchBackend(loaded, layer, device, dtype, optimize=optimize, master=master)
