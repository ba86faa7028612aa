"""ONNX Runtime on the CPU: the torch network exported on first use, with the target layer's
activations as a second graph output and, on request, what the exact Eigen-CAM solver starts from
(the Gram matrix of the map's positions, the sums its sign rule reads, the activations' energy) as
three more (:func:`~.onnx_gram.add_gram`).

On a laptop CPU the forward pass is the whole cost of a frame, and ONNX Runtime runs the same
network about twice as fast as torch (measured in docs/benchmarks.md). Eigen-CAM needs no gradients,
so an inference runtime is all it needs.

The export has a dynamic batch, height and width (as fast as a fixed size here), so one file serves
every input size. It is cached on disk (:func:`cache_dir`) under a key of the model, the layer, a
digest of the weights, one of a factory's own code and the torch, onnx and onnxruntime versions: a
stale file is never matched,
and a file that does not load is rebuilt; the cache (:mod:`.export_cache`) keeps at most 2 GB, the
least recently used files removed first (:func:`trim_cache`). Each session is checked against the torch network on its
first input, as the traced copy is; when they disagree (or the network cannot be exported), the
torch backend runs instead and :attr:`OnnxBackend.warning` says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eigencam_live.cam import EXACT_MAX_DIM, Gram
from eigencam_live.models import ActivationCapture, Layer, LoadedModel, to_feature_map

from .export_cache import cache_dir, code_digest, mark_used, part_path, trim_cache
from .export_forms import dynamic_forms
from .onnx_file import runtime_options
from .onnx_gram import add_gram, agree, gram_agrees
from .torch_backend import TorchBackend, _outputs

__all__ = ["OnnxBackend", "onnxruntime_available"]

_OPSET = 17
_clock = time.monotonic  # (tests move it on: a handed module's weights are looked at every 2 s)
#: The exported graph's form, part of the cache key: ``x, want_gram -> logits, fmap, gram, gram_sums, gram_raw``.
_GRAPH = f"gram-if-4-{EXACT_MAX_DIM}"  # the limit is baked into the graph; 2: layers copied, plain attention; 3: sums, raw; 4: a factory's scores by lineage
def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class _WithLayer(nn.Module):
    """``x -> (outputs, the layer's output)``: the graph that is exported. :attr:`nchw` records,
    when traced, whether that output is the ``(B, C, H, W)`` map as it is (not tokens, not NHWC)."""

    def __init__(self, net: nn.Module, layer: str, prefix_tokens: int | None = None,
                 scores_at: int | None = None) -> None:
        super().__init__()
        self.net, self.layer, self.prefix_tokens, self.scores_at = net, layer, prefix_tokens, scores_at
        self.nchw = False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with ActivationCapture(self.net, self.layer) as cap:
            out = _outputs(self.net(x), self.scores_at)  # the class scores, as the torch backend reads them
        raw = cap.outputs.get(self.layer)
        if not isinstance(out, torch.Tensor) or not isinstance(raw, torch.Tensor):
            # ONNX graph outputs are tensors: a dict, a tuple or a pyramid of maps stays with torch
            raise TypeError(f"the output of the network or of layer {self.layer!r} is not a single tensor")
        self.nchw = to_feature_map(raw, tuple(x.shape[-2:]), self.prefix_tokens, x.shape[0]) is raw
        return out, raw


class OnnxBackend:
    """A torch network run by ONNX Runtime on the CPU, in fp32 (the backend interface of
    :mod:`eigencam_live.backends`).

    Args:
        loaded: the model (on the CPU, fp32).
        layer: the target layer.
        threads: ONNX Runtime's intra-op threads (default: torch's thread count, which the front
            ends set); settable until the first forward pass builds the session (``annotate`` shares
            the cores with x264, see :func:`~eigencam_live.options.headless_threads`).
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
        self._sizes: dict[str, set[tuple[int, int]]] = {}  # by layer: the input sizes checked against torch
        self._refused: dict[str, set[tuple[int, int]]] = {}  # by layer: those that differed (torch runs them)
        self._on_torch = False  # the last forward pass ran on torch
        self._gram_trusted: dict[str, bool] = {}  # by layer: its Gram output agreed with the activations'
        self._digest: str | None = None
        # The caller's own module may change its weights while it runs (a network in training): the
        # export is a copy of them, so a change hands the network to torch, which reads them live.
        self._watched = list(loaded.net.parameters()) if loaded.handed else []
        self._versions = 0  # their version counters' sum when last looked at
        self._print: list | None = None  # their fingerprint when exported (None: nothing exported yet)
        self._printed_at = 0.0  # when the fingerprint was last compared
        self._moved = False  # they changed since: torch runs every layer

    @property
    def layer(self) -> str:
        return self.torch.layer

    @layer.setter
    def layer(self, name: str) -> None:
        self.torch.layer = name

    @property
    def running(self) -> str:
        """What runs the forward pass: ``onnxruntime``, or ``torch`` where it fell back (for the
        layer, or for the input size of the last frame)."""
        layer = self.layer
        fell_back = layer in self._sessions and self._sessions[layer] is None
        return "torch" if fell_back or self._on_torch else "onnxruntime"

    @property
    def preparing(self) -> bool:
        """The next forward pass exports (or loads) and checks the network first: seconds."""
        return self.layer not in self._sessions

    def prepares(self, shape: tuple[int, ...]) -> bool:
        """Whether a forward pass of ``(C, h, w)`` inputs first exports (or loads) the network, or
        checks its export against torch at this size (once per size: torch's forward and ONNX
        Runtime's first at that size, 7 to 16 s for resnet50 at short side 640 on 2 cores)."""
        layer, size = self.layer, tuple(shape[-2:])
        if layer not in self._sessions:
            return True
        return (self._sessions[layer] is not None and size not in self._sizes.get(layer, ())
                and size not in self._refused.get(layer, ()))

    @property
    def exported_before(self) -> bool:
        """Whether the layer in use has an export in the cache: preparing then loads and checks it
        (a second or so) instead of exporting."""
        try:
            return self._path(self.layer).exists()
        except Exception:  # (hashing the weights, reading the code: the export itself will say what fails)
            return False

    def probe(self, layer: str, size: tuple[int, int]) -> tuple[int, int, int]:
        return self.torch.probe(layer, size)

    def feature_layers(self, size: tuple[int, int]) -> list[Layer]:
        return self.torch.feature_layers(size)

    def _map(self, raw: np.ndarray, x: torch.Tensor) -> torch.Tensor:
        return to_feature_map(torch.from_numpy(raw), tuple(x.shape[-2:]), self.loaded.prefix_tokens, x.shape[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`TorchBackend.forward`; the first call for a layer exports (or loads) and checks."""
        return self._run(x, gram=False)[:2]

    def forward_gram(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Gram | None]:
        """:meth:`forward` and, where the exact Eigen-CAM solver takes it (an NCHW map with
        ``HW <= min(C, EXACT_MAX_DIM)``), the centred Gram matrix of its positions ``(B, HW, HW)``
        and the rest of :class:`~eigencam_live.cam.Gram`, computed by the runtime
        (:func:`~.onnx_gram.add_gram`); else ``None``."""
        return self._run(x, gram=True)

    def _fingerprint(self) -> list[tuple[int, float]]:
        """The handed module's parameters as they are now, cheaply: each one's identity and the sum
        of up to 4096 of its values, evenly spaced (every value of a small one; 2 to 6 ms for 300
        tensors). Its buffers are left out: a module may count its own calls in one (a review: ONNX
        Runtime was given up on the second frame)."""
        with torch.no_grad():
            return [(id(p), float(p.detach().reshape(-1)[:: max(1, p.numel() // 4096)].double().sum()))
                    for p in self.loaded.net.parameters()]

    def _weights_moved(self) -> bool:
        """Whether the handed module's parameters changed since they were exported: looked at when
        their version counters moved (an optimiser's step, a ``no_grad`` write, ``load_state_dict``:
        20 to 50 us a frame; nothing for a network the engine loaded), and every 2 s whatever they
        say (``p.data`` writes and replaced parameters move no counter, a review). The same values
        written back (a refused precision's move and return) are no change."""
        if not self._watched or self._print is None:  # (nothing exported: torch runs it for its own reason)
            return False
        versions = sum(t._version for t in self._watched)
        if versions == self._versions and _clock() < self._printed_at + 2.0:
            return False
        self._versions, self._printed_at = versions, _clock()
        return self._fingerprint() != self._print

    def _watch_from_now(self) -> None:
        """The parameters just exported and checked are what later frames are compared with."""
        if self.loaded.handed and self._print is None:
            self._watched = list(self.loaded.net.parameters())
            self._versions = sum(t._version for t in self._watched)
            self._print, self._printed_at = self._fingerprint(), _clock()

    def _run(self, x: torch.Tensor, gram: bool) -> tuple[torch.Tensor, torch.Tensor, Gram | None]:
        layer = self.layer
        if self._watched and self._weights_moved():  # (a library trial: the same scores, frame after frame)
            self.warning = (f"the weights of {self.loaded.spec.name} changed after its export for ONNX Runtime (a "
                            "network in training?): torch runs it from now on, and follows them")
            self._moved, self._watched = True, []
            self._sessions = dict.fromkeys(self._sessions)
        if layer not in self._sessions:
            self._sessions[layer] = None if self._moved else self._checked_session(layer, x)
            if self._sessions[layer] is not None:
                self._watch_from_now()
        session = self._sessions[layer]
        size = tuple(x.shape[-2:])
        if session is not None and size not in self._sizes.setdefault(layer, set()):
            # One export serves every size, unless the network baked its first input's shapes into
            # the graph (a reshape by a traced size: mobilevit failed, torchvision's swin_t gave
            # other numbers): each new size is checked against torch once, and torch runs the
            # sizes that differ (the others stay on ONNX Runtime).
            refused = self._refused.setdefault(layer, set())
            if size not in refused and self._agrees(session, x, f" at {size[1]}x{size[0]}"):
                self._sizes[layer].add(size)
            else:
                refused.add(size)
                session = None
        self._on_torch = session is None
        if session is None:
            return (*self.torch.forward(x), None)
        wanted = gram and self._gram_trusted.get(layer, True)
        logits, raw, *found = session.run(None, {"x": x.contiguous().numpy(), "want_gram": np.array(wanted)})
        fmap = self._map(raw, x)
        if not found[0].size:
            return torch.from_numpy(logits), fmap, None
        if layer not in self._gram_trusted:  # the first Gram (the first input's map may have had none)
            self._gram_trusted[layer] = gram_agrees(found, fmap)
            if not self._gram_trusted[layer]:
                return torch.from_numpy(logits), fmap, None  # never used: the solver makes its own
        return torch.from_numpy(logits), fmap, Gram(*found)

    # -- export, cache, check ------------------------------------------------------------------
    def _agrees(self, session, x: torch.Tensor, where: str) -> bool:
        """Whether ``session`` gives torch's scores and map for ``x``; else says why in :attr:`warning`."""
        with torch.inference_mode():
            want_logits, want_fmap = self.torch.forward(x)
        try:
            logits, raw, *_ = session.run(None, {"x": x.contiguous().numpy(), "want_gram": np.array(False)})
        except Exception:  # noqa: BLE001 - the graph cannot take this size: torch can
            self.warning = (f"ONNX Runtime cannot run {self.loaded.spec.name}{where} (its export holds another "
                            "input size); torch runs it there")
            return False
        if agree(logits, want_logits) and agree(self._map(raw, x).numpy(), want_fmap):
            return True
        self.warning = (f"ONNX Runtime's outputs for {self.loaded.spec.name}{where} differ from torch's (its export "
                        "holds another input size); torch runs it there")
        return False

    def _checked_session(self, layer: str, x: torch.Tensor):
        with torch.inference_mode(), _ValueReads() as reads:
            want_logits, want_fmap = self.torch.forward(x)
        if reads.site:  # checked on every start: a cached export was made from the same code
            self.warning = (f"{self.loaded.spec.name} reads a tensor's value into Python in its forward "
                            f"({reads.site}): an ONNX export would keep this frame's branch for every frame; "
                            "torch runs it")
            return None
        path = self._path(layer)
        feeds = {"x": x.contiguous().numpy(), "want_gram": np.array(True)}
        # torch's exporter refused this network and layer before, with these versions: not again
        failed = path.with_suffix(".failed")
        if not path.exists():
            with contextlib.suppress(OSError):
                self.warning = failed.read_text(encoding="utf-8").strip() or "ONNX export failed before; torch runs it"
                return None
        for attempt in ("cached", "fresh"):
            if attempt == "fresh" or not path.exists():
                try:
                    self._export(layer, x, path)
                except Exception as exc:  # an op ONNX cannot express, a full disk...: torch runs it
                    self.warning = f"ONNX export of {self.loaded.spec.name} failed ({_first_line(exc)}); torch runs it"
                    if isinstance(exc, _ExportRefused):  # the exporter's own verdict, the same next time
                        with contextlib.suppress(OSError):
                            failed.parent.mkdir(parents=True, exist_ok=True)
                            failed.write_text(self.warning + "\n", encoding="utf-8")
                    return None
            mark_used(path)  # before loading: another process's trim then leaves it
            try:
                session = self._session(path)
                logits, raw, *gram = session.run(None, feeds)
            except Exception:  # a corrupt or truncated file: rebuild it once
                path.unlink(missing_ok=True)
                continue
            fmap = self._map(raw, x).numpy()
            if agree(logits, want_logits) and agree(fmap, want_fmap):
                self.warning = None
                self._sizes[layer] = {tuple(x.shape[-2:])}
                if gram[0].size:  # one that disagrees is never used: the solver makes its own
                    self._gram_trusted[layer] = gram_agrees(gram, want_fmap)
                trim_cache(path.parent, keep=path)
                return session
            path.unlink(missing_ok=True)  # a cached file that does not match: rebuild it once
        self.warning = (f"ONNX Runtime's outputs for {self.loaded.spec.name} differ from torch's; "
                        "torch runs it")
        return None

    def _path(self, layer: str) -> Path:
        import onnx
        import onnxruntime

        if self._digest is None:
            self._digest = self._weights_digest()
        key = "|".join([self.loaded.spec.name, layer, _GRAPH, str(self.loaded.spec.fixed_input), self._digest,
                        code_digest(self.loaded.net, self.loaded.spec.name), torch.__version__, onnx.__version__, onnxruntime.__version__,
                        str(_OPSET)])
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.loaded.spec.name)
        return cache_dir() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"

    def _weights_digest(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        for name, tensor in self.loaded.net.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def _export(self, layer: str, x: torch.Tensor, path: Path) -> None:
        import onnx

        dynamic = {"x": {0: "batch"}, "logits": {0: "batch"}, "fmap": {0: "batch"}}
        if self.loaded.spec.fixed_input is None:
            dynamic["x"].update({2: "height", 3: "width"})
        buffer = io.BytesIO()
        graph = _WithLayer(self.loaded.net, layer, self.loaded.prefix_tokens, self.loaded.scores_at).eval()
        fastpath = torch.backends.mha.get_fastpath_enabled()
        with warnings.catch_warnings(), torch.no_grad(), _native_stdout_muted(), dynamic_forms(_OPSET):
            warnings.simplefilter("ignore")
            # Without gradients, nn.MultiheadAttention and nn.TransformerEncoderLayer take fused
            # kernels that have no ONNX form (torchvision's ViTs were refused): the plain ops here.
            torch.backends.mha.set_fastpath_enabled(False)
            try:
                torch.onnx.export(graph, (x,), buffer, input_names=["x"], output_names=["logits", "fmap"],
                                  dynamic_axes=dynamic, opset_version=_OPSET, dynamo=False)
            except Exception as exc:
                if isinstance(exc, MemoryError) or "allocate memory" in str(exc) or "out of memory" in str(exc):
                    raise  # this time's shortage, not the network's: tried again next time
                raise _ExportRefused(_first_line(exc)) from exc
            finally:
                torch.backends.mha.set_fastpath_enabled(fastpath)
        model = onnx.load_from_string(buffer.getvalue())
        add_gram(model, graph.nchw)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = part_path(path)
        tmp.write_bytes(model.SerializeToString())
        os.replace(tmp, path)  # never a half-written file under the final name

    def _session(self, path: Path):
        import onnxruntime as ort

        return ort.InferenceSession(str(path), runtime_options(self.threads), providers=["CPUExecutionProvider"])


_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # eigencam_live/


class _ValueReads(torch.overrides.TorchFunctionMode):
    """While inside (this thread only), records where the code being run first turns a tensor's
    value into a Python one (``if x.mean() > 0``, ``.item()``, ``int(t)``, ``.tolist()``, ``.numpy()``,
    ``torch.equal``...).

    An export traces one input: such a value becomes a constant, and a branch on it is fixed for
    every later frame (maps and scores silently wrong on the frames that go the other way). In
    eager mode sizes are Python ints already, so any read here is of data: 40 torchvision and timm
    classifiers make none. :attr:`site` is ``FILE:LINE`` of the first, in the network's code (the
    innermost frame outside torch and this package), or ``None``."""

    KINDS = frozenset({torch.Tensor.__bool__, torch.Tensor.item, torch.Tensor.__int__, torch.Tensor.__float__,
                       torch.Tensor.__index__, torch.Tensor.__complex__, torch.Tensor.tolist, torch.Tensor.numpy,
                       torch.Tensor.__array__, torch.Tensor.__contains__,
                       # comparisons that answer with a Python bool
                       torch.equal, torch.Tensor.equal, torch.allclose, torch.Tensor.allclose, torch.is_nonzero,
                       torch.Tensor.is_nonzero})

    def __init__(self) -> None:
        super().__init__()
        self.site: str | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if self.site is None and func in self.KINDS:
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith(_TORCH_DIR):
                frame = frame.f_back
            if frame is not None and not frame.f_code.co_filename.startswith(_OWN_DIR):
                self.site = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        return func(*args, **(kwargs or {}))


class _ExportRefused(Exception):
    """torch's exporter refused the network (an op with no ONNX form...)."""


class _Muted:
    """Who has the process's stdout muted (exports in several threads: the first mutes, the
    last gives it back)."""

    lock = threading.Lock()
    count = 0
    saved: int | None = None


@contextlib.contextmanager
def _native_stdout_muted():
    """The process's stdout (file descriptor 1) to nowhere while inside: where an op has no ONNX
    form, torch's exporter prints the whole graph there from C++ (329 lines for vit_b_16) before it
    raises, which a front end's one-line warning then says."""
    with _Muted.lock:
        if _Muted.count == 0:
            with contextlib.suppress(Exception):  # sys.stdout may be None or closed
                sys.stdout.flush()
            try:
                _Muted.saved = os.dup(1)
                with open(os.devnull, "wb") as null:
                    os.dup2(null.fileno(), 1)
            except OSError:  # no descriptor 1 to speak of
                _Muted.saved = None
        _Muted.count += 1
    try:
        yield
    finally:
        with _Muted.lock:
            _Muted.count -= 1
            if _Muted.count == 0 and _Muted.saved is not None:
                os.dup2(_Muted.saved, 1)
                os.close(_Muted.saved)
                _Muted.saved = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
