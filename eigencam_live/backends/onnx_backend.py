"""ONNX Runtime on the CPU: the torch network exported on first use, with the target layer's
activations as a second graph output.

On a laptop CPU the forward pass is the whole cost of a frame, and ONNX Runtime runs the same
network about twice as fast as torch (measured in docs/benchmarks.md). Eigen-CAM needs no gradients,
so an inference runtime is all it needs.

The export has a dynamic batch, height and width (as fast as a fixed size here), so one file serves
every input size. It is cached on disk (:func:`cache_dir`) under a key of the model, the layer, a
digest of the weights and the torch, onnx and onnxruntime versions: a stale file is never matched,
and a file that does not load is rebuilt. Each session is checked against the torch network on its
first input, as the traced copy is; when they disagree (or the network cannot be exported), the
torch backend runs instead and :attr:`OnnxBackend.warning` says why.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eigencam_live.cam import EXACT_MAX_DIM
from eigencam_live.models import ActivationCapture, Layer, LoadedModel, to_feature_map

from .torch_backend import TorchBackend, _outputs

__all__ = ["OnnxBackend", "cache_dir", "onnxruntime_available"]

_OPSET = 17


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    """Where exported networks are kept: ``$EIGENCAM_CACHE``, else ``$XDG_CACHE_HOME`` or
    ``~/.cache``, under ``eigencam-live/onnx``."""
    if os.environ.get("EIGENCAM_CACHE"):
        return Path(os.environ["EIGENCAM_CACHE"]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eigencam-live" / "onnx"


class _WithLayer(nn.Module):
    """``x -> (outputs, the layer's output[, gram])``: the graph that is exported.

    With ``gram``, a third output: the Gram matrix of the map's positions with its channels
    centred, ``X_c X_c^T`` ``(B, HW, HW)``, computed by the runtime while the activations are in
    its caches (the one large product of the Eigen-CAM step: see
    :func:`eigencam_live.cam.solvers.gram_cpu`). Only for a layer whose output is the ``(B, C, H,
    W)`` map as it is.
    """

    def __init__(self, net: nn.Module, layer: str, gram: bool = False, prefix_tokens: int | None = None) -> None:
        super().__init__()
        self.net, self.layer, self.gram, self.prefix_tokens = net, layer, gram, prefix_tokens

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with ActivationCapture(self.net, self.layer) as cap:
            out = _outputs(self.net(x))  # the class scores, as the torch backend reads them
        raw = cap.outputs.get(self.layer)
        if not isinstance(out, torch.Tensor) or not isinstance(raw, torch.Tensor):
            # ONNX graph outputs are tensors: a dict, a tuple or a pyramid of maps stays with torch
            raise TypeError(f"the network's or layer {self.layer!r}'s output is not a single tensor")
        if not self.gram:
            return out, raw
        if to_feature_map(raw, tuple(x.shape[-2:]), self.prefix_tokens, x.shape[0]) is not raw:
            raise TypeError(f"layer {self.layer!r}'s output is not an NCHW map")  # tokens, NHWC: no Gram
        a = raw.flatten(2)  # (B, C, HW)
        a = a - a.mean(dim=2, keepdim=True)
        return out, raw, a.transpose(1, 2) @ a


def _gram(fmap: torch.Tensor) -> np.ndarray:
    """``(B, HW, HW)`` Gram matrices of the positions of ``(B, C, H, W)`` maps, channels centred."""
    a = fmap.detach().double().flatten(2)
    a = a - a.mean(dim=2, keepdim=True)
    return (a.mT @ a).numpy()


def _agree(a: np.ndarray, b: torch.Tensor | np.ndarray, tol: float = 1e-3) -> bool:
    b = b if isinstance(b, np.ndarray) else b.detach().float().numpy()
    scale = max(float(np.abs(b).max()), 1e-30)
    return a.shape == b.shape and float(np.abs(a - b).max()) / scale <= tol


class OnnxBackend:
    """A torch network run by ONNX Runtime on the CPU, in fp32 (the backend interface of
    :mod:`eigencam_live.backends`).

    Args:
        loaded: the model (on the CPU, fp32).
        layer: the target layer.
        threads: ONNX Runtime's intra-op threads (default: torch's thread count, which the front
            ends set to all cores but one).
        master: as :class:`TorchBackend`'s.
    """

    name = "onnxruntime"

    def __init__(self, loaded: LoadedModel, layer: str, *, threads: int | None = None,
                 master: dict[str, torch.Tensor] | None = None) -> None:
        # The torch network probes shapes, checks each export, and runs when ONNX Runtime cannot.
        self.torch = TorchBackend(loaded, layer, torch.device("cpu"), torch.float32, optimize=False, master=master)
        self.loaded = loaded
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.threads = threads
        self.warning: str | None = None
        # by (layer, with the Gram output); None: torch runs it (or, for a Gram, the plain graph)
        self._sessions: dict[tuple[str, bool], object | None] = {}
        self._gram_fits: dict[tuple[str, tuple[int, int]], bool] = {}
        self._digest: str | None = None

    @property
    def layer(self) -> str:
        return self.torch.layer

    @layer.setter
    def layer(self, name: str) -> None:
        self.torch.layer = name

    @property
    def running(self) -> str:
        """What runs the forward pass: ``onnxruntime``, or ``torch`` where it fell back."""
        return "torch" if (self.layer, False) in self._sessions and self._sessions[self.layer, False] is None \
            else "onnxruntime"

    @property
    def preparing(self) -> bool:
        """The next forward pass exports (or loads) and checks the network first: seconds (both
        graphs, the plain one and the one with the Gram matrix, are built then)."""
        return (self.layer, False) not in self._sessions

    def probe(self, layer: str, size: tuple[int, int]) -> tuple[int, int, int]:
        return self.torch.probe(layer, size)

    def feature_layers(self, size: tuple[int, int]) -> list[Layer]:
        return self.torch.feature_layers(size)

    def _map(self, raw: np.ndarray, x: torch.Tensor) -> torch.Tensor:
        return to_feature_map(torch.from_numpy(raw), tuple(x.shape[-2:]), self.loaded.prefix_tokens, x.shape[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`TorchBackend.forward`; the first call for a layer exports (or loads) and checks."""
        return self._run(x, gram=False)[:2]

    def forward_gram(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`forward` and, where the exact Eigen-CAM solver will use it (an NCHW map with
        ``HW <= min(C, EXACT_MAX_DIM)``), the centred Gram matrix of its positions ``(B, HW, HW)``
        from the runtime; else ``None``."""
        return self._run(x, gram=True)

    def _run(self, x: torch.Tensor, gram: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        layer = self.layer
        if (layer, False) not in self._sessions:  # both graphs at once: the app shows one "preparing"
            self._sessions[layer, False] = self._checked_session(layer, x, gram=False)
            if self._sessions[layer, False] is not None:  # None: the layer is no NCHW map, the plain graph runs
                self._sessions[layer, True] = self._checked_session(layer, x, gram=True)
        if self._sessions[layer, False] is None:
            return (*self.torch.forward(x), None)
        key = (layer, gram and self._fits(layer, x))
        session = self._sessions.get(key) or self._sessions[layer, False]
        found = session.run(None, {"x": x.contiguous().numpy()})
        return torch.from_numpy(found[0]), self._map(found[1], x), torch.from_numpy(found[2]) if len(found) == 3 else None

    def _fits(self, layer: str, x: torch.Tensor) -> bool:
        """Whether the exact solver's Gram of the positions is wanted for inputs of ``x``'s size."""
        size = (int(x.shape[-2]), int(x.shape[-1]))
        if (layer, size) not in self._gram_fits:
            c, h, w = self.probe(layer, size)  # once per layer and size
            self._gram_fits[layer, size] = h * w <= min(c, EXACT_MAX_DIM)
        return self._gram_fits[layer, size]

    # -- export, cache, check ------------------------------------------------------------------
    def _checked_session(self, layer: str, x: torch.Tensor, gram: bool):
        """A session for ``layer`` (with the Gram output if ``gram``) whose outputs agree with the
        torch network's on ``x``, or ``None`` (with :attr:`warning` set for the plain graph)."""
        with torch.inference_mode():
            want_logits, want_fmap = self.torch.forward(x)
        path = self._path(layer, gram)
        for attempt in ("cached", "fresh"):
            if attempt == "fresh" or not path.exists():
                try:
                    self._export(layer, x, path, gram)
                except Exception as exc:  # an op ONNX cannot express, ...: torch runs it
                    if not gram:
                        self.warning = f"ONNX export of {self.loaded.spec.name} failed ({_first_line(exc)}); torch runs it"
                    return None
            try:
                session = self._session(path)
                found = session.run(None, {"x": x.contiguous().numpy()})
            except Exception:  # a corrupt or truncated file: rebuild it once
                path.unlink(missing_ok=True)
                continue
            fmap = self._map(found[1], x).numpy()
            if _agree(found[0], want_logits) and _agree(fmap, want_fmap) and (not gram or _agree(found[2], _gram(want_fmap))):
                if not gram:
                    self.warning = None
                return session
            path.unlink(missing_ok=True)  # a cached file that does not match: rebuild it once
        if not gram:
            self.warning = (f"ONNX Runtime's outputs for {self.loaded.spec.name} differ from torch's; "
                            "torch runs it")
        return None

    def _path(self, layer: str, gram: bool) -> Path:
        import onnx
        import onnxruntime

        if self._digest is None:
            h = hashlib.blake2b(digest_size=16)
            for name, tensor in self.loaded.net.state_dict().items():
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._digest = h.hexdigest()
        key = "|".join([self.loaded.spec.name, layer, "gram" * gram, str(self.loaded.spec.fixed_input), self._digest,
                        torch.__version__, onnx.__version__, onnxruntime.__version__, str(_OPSET)])
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.loaded.spec.name)
        return cache_dir() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"

    def _export(self, layer: str, x: torch.Tensor, path: Path, gram: bool) -> None:
        dynamic = {"x": {0: "batch"}, "logits": {0: "batch"}, "fmap": {0: "batch"}}
        names = ["logits", "fmap"]
        if gram:
            dynamic["gram"] = {0: "batch", 1: "positions", 2: "positions"}
            names.append("gram")
        if self.loaded.spec.fixed_input is None:
            dynamic["x"].update({2: "height", 3: "width"})
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            graph = _WithLayer(self.loaded.net, layer, gram, self.loaded.prefix_tokens).eval()
            torch.onnx.export(graph, (x,), buffer, input_names=["x"], output_names=names, dynamic_axes=dynamic,
                              opset_version=_OPSET, dynamo=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, path)  # never a half-written file under the final name

    def _session(self, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
