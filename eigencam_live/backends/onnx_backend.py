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
    """``x -> (outputs, the layer's output)``: the graph that is exported."""

    def __init__(self, net: nn.Module, layer: str) -> None:
        super().__init__()
        self.net, self.layer = net, layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with ActivationCapture(self.net, self.layer) as cap:
            out = _outputs(self.net(x))  # the class scores, as the torch backend reads them
        raw = cap.outputs.get(self.layer)
        if not isinstance(out, torch.Tensor) or not isinstance(raw, torch.Tensor):
            # ONNX graph outputs are tensors: a dict, a tuple or a pyramid of maps stays with torch
            raise TypeError(f"the network's or layer {self.layer!r}'s output is not a single tensor")
        return out, raw


def _agree(a: np.ndarray, b: torch.Tensor, tol: float = 1e-3) -> bool:
    b = b.detach().float().numpy()
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
        self._sessions: dict[str, object | None] = {}  # by layer; None: torch runs it
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
        layer = self.layer
        return "torch" if layer in self._sessions and self._sessions[layer] is None else "onnxruntime"

    @property
    def preparing(self) -> bool:
        """The next forward pass exports (or loads) and checks the network first: seconds."""
        return self.layer not in self._sessions

    def probe(self, layer: str, size: tuple[int, int]) -> tuple[int, int, int]:
        return self.torch.probe(layer, size)

    def feature_layers(self, size: tuple[int, int]) -> list[Layer]:
        return self.torch.feature_layers(size)

    def _map(self, raw: np.ndarray, x: torch.Tensor) -> torch.Tensor:
        return to_feature_map(torch.from_numpy(raw), tuple(x.shape[-2:]), self.loaded.prefix_tokens, x.shape[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`TorchBackend.forward`; the first call for a layer exports (or loads) and checks."""
        layer = self.layer
        if layer not in self._sessions:
            self._sessions[layer] = self._checked_session(layer, x)
        session = self._sessions[layer]
        if session is None:
            return self.torch.forward(x)
        logits, raw = session.run(None, {"x": x.contiguous().numpy()})
        return torch.from_numpy(logits), self._map(raw, x)

    # -- export, cache, check ------------------------------------------------------------------
    def _checked_session(self, layer: str, x: torch.Tensor):
        with torch.inference_mode():
            want_logits, want_fmap = self.torch.forward(x)
        path = self._path(layer)
        for attempt in ("cached", "fresh"):
            if attempt == "fresh" or not path.exists():
                try:
                    self._export(layer, x, path)
                except Exception as exc:  # an op ONNX cannot express, ...: torch runs it
                    self.warning = f"ONNX export of {self.loaded.spec.name} failed ({_first_line(exc)}); torch runs it"
                    return None
            try:
                session = self._session(path)
                logits, raw = session.run(None, {"x": x.contiguous().numpy()})
            except Exception:  # a corrupt or truncated file: rebuild it once
                path.unlink(missing_ok=True)
                continue
            fmap = self._map(raw, x).numpy()
            if _agree(logits, want_logits) and _agree(fmap, want_fmap):
                self.warning = None
                return session
            path.unlink(missing_ok=True)  # a cached file that does not match: rebuild it once
        self.warning = (f"ONNX Runtime's outputs for {self.loaded.spec.name} differ from torch's; "
                        "torch runs it")
        return None

    def _path(self, layer: str) -> Path:
        import onnx
        import onnxruntime

        if self._digest is None:
            h = hashlib.blake2b(digest_size=16)
            for name, tensor in self.loaded.net.state_dict().items():
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._digest = h.hexdigest()
        key = "|".join([self.loaded.spec.name, layer, str(self.loaded.spec.fixed_input), self._digest,
                        torch.__version__, onnx.__version__, onnxruntime.__version__, str(_OPSET)])
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.loaded.spec.name)
        return cache_dir() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"

    def _export(self, layer: str, x: torch.Tensor, path: Path) -> None:
        dynamic = {"x": {0: "batch"}, "logits": {0: "batch"}, "fmap": {0: "batch"}}
        if self.loaded.spec.fixed_input is None:
            dynamic["x"].update({2: "height", 3: "width"})
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_WithLayer(self.loaded.net, layer).eval(), (x,), buffer, input_names=["x"],
                              output_names=["logits", "fmap"], dynamic_axes=dynamic, opset_version=_OPSET,
                              dynamo=False)
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
