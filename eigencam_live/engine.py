"""Frames in, Eigen-CAM maps, predictions and finished pictures out: the one frame path.

The engine owns one network (through a backend, :mod:`eigencam_live.backends`) and the per-stream
state (warm-started subspace, temporal smoothing). Both front ends (the Qt app and ``annotate``)
drive it the same way::

    engine = Engine(EngineConfig(model="resnet50", weights="none"))
    results = engine.process(frames, render=RenderConfig())   # uint8 BGR (H, W, 3) or (B, H, W, 3)
    results[0].picture, results[0].heatmap, results[0].predictions

Every frame takes the same four steps, on the engine's device:

1. **preprocess**: one upload of the uint8 frames (pinned, non-blocking on CUDA), the whole frame
   resized (never cropped) so that its short side is ``short_side`` and both sides are multiples of
   the network's stride (32), BGR -> RGB, normalised;
2. **forward**: the backend returns the network's outputs and the target layer's activations;
3. **Eigen-CAM**: :func:`~eigencam_live.cam.eigen_cam` (on CUDA its sync-free solver) and the
   optional temporal smoothing;
4. **finish**: top-k, the peak, the explained variance packed in one small tensor; the map laid
   over the frame's pixels and the picture drawn (:func:`finish_pictures`).

:meth:`Engine.submit` queues a batch and returns a :class:`PendingFrames` at once on CUDA: with
:attr:`Engine.resident` (the default on CUDA) the frame stays on the device from upload to the
finished picture, with one download and no host sync inside the loop, so the host is free to decode
and encode meanwhile. On the CPU step 4 draws the picture when the result is asked for
(:meth:`PendingFrames.result`), so a caller with a writer thread (``annotate``) draws it there.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, fields, replace
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .backends import (
    BACKENDS,
    OnnxBackend,
    OnnxFileBackend,
    TorchBackend,
    is_onnx_path,
    load_onnx,
    make_backend,
    resolve_backend,
)
from .cam import METHODS, SubspaceTracker, TemporalSmoother, eigen_cam
from .errors import ConfigError, LayerNotFoundError, WeightsUnavailableError
from .models import MODELS, LoadedModel, load_model
from .render import RenderConfig, render_frames

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "Engine",
    "EngineConfig",
    "FrameResult",
    "PendingFrames",
    "finish_pictures",
    "input_size",
    "maps_on_frames",
    "peak_pixel",
    "resolve_device",
]

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
STRIDE = 32
#: Pixels a feature cell is enlarged to by bicubic interpolation before bilinear takes over.
SMOOTH_STEP = 8
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings; validated on construction (:class:`ConfigError` names the bad field).

    Attributes:
        model: a key of :data:`eigencam_live.models.MODELS`, or the path of an ``.onnx`` file.
        weights: ``imagenet``, ``none`` or a state_dict path (an ONNX file holds its own).
        layer: target layer (dotted module name); ``None`` = the model's default.
        component: 1-based principal component (1 to 5 in the UI; any up to the rank here).
        method: ``auto``, ``exact`` or ``randomized``.
        short_side: the network input's short side in pixels (ignored by fixed-size models).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        backend: ``auto`` (ONNX Runtime on the CPU in fp32, torch elsewhere), ``torch`` or
            ``onnxruntime`` (:mod:`eigencam_live.backends`).
        precision: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp32``, ``fp16`` or ``bf16``.
        top_k: number of predictions returned.
        smoothing: temporal smoothing of maps in ``[0, 1)``; 0 = off.
        labels: a text file of class names, one a line (default: the model's own; an ONNX file's
            are class indices).
        mean, std: the input normalisation, per RGB channel of ``[0, 1]`` pixels (default: the
            model's own; ImageNet's for an ONNX file).
        optimize: with the torch backend on the CPU in fp32, run conv-BN networks through a traced,
            frozen, optimised copy (:mod:`eigencam_live.backends.traced`), checked against the
            eager network when built.
    """

    model: str = "mobilenet_v3_large"
    weights: str = "imagenet"
    layer: str | None = None
    component: int = 1
    method: str = "auto"
    short_side: int = 224
    device: str = "auto"
    backend: str = "auto"
    precision: str = "auto"
    top_k: int = 5
    smoothing: float = 0.0
    labels: str | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    optimize: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or (self.model not in MODELS and not is_onnx_path(self.model)):
            import difflib

            close = difflib.get_close_matches(self.model, list(MODELS), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else f" Available: {', '.join(sorted(MODELS))}"
            raise ConfigError(f"unknown model {self.model!r}.{hint} Or the path of an .onnx file.", field="model")
        if is_onnx_path(self.model) and self.weights not in ("imagenet", "none"):
            raise ConfigError("an ONNX file holds its own weights: leave --weights out", field="weights")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (tuple, list)) or len(value) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in value)
                or (name == "std" and min(value) <= 0)
            ):
                raise ConfigError(f"must be three numbers in [0, 1] (R G B, of [0, 1] pixels){', above 0' if name == 'std' else ''}. "
                                  f"Got {value!r}", field=name)
        if self.labels is not None and not isinstance(self.labels, str):
            raise ConfigError(f"must be the path of a text file. Got {self.labels!r}", field="labels")
        if not isinstance(self.weights, str) or not self.weights:
            raise ConfigError(f"must be imagenet, none or a file path. Got {self.weights!r}", field="weights")
        _int_field("component", self.component, 1, 2048)
        if self.method not in METHODS:
            raise ConfigError(f"must be one of {', '.join(METHODS)}. Got {self.method!r}", field="method")
        _int_field("short_side", self.short_side, 32, 4096)
        if self.device not in DEVICES:
            raise ConfigError(f"must be one of {', '.join(DEVICES)}. Got {self.device!r}", field="device")
        if self.backend not in BACKENDS:
            raise ConfigError(f"must be one of {', '.join(BACKENDS)}. Got {self.backend!r}", field="backend")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"must be one of {', '.join(PRECISIONS)}. Got {self.precision!r}", field="precision")
        _int_field("top_k", self.top_k, 1, 1000)
        if not isinstance(self.optimize, bool):
            raise ConfigError(f"must be True or False. Got {self.optimize!r}", field="optimize")
        if (
            not isinstance(self.smoothing, (int, float))
            or isinstance(self.smoothing, bool)
            or not 0.0 <= float(self.smoothing) < 1.0
        ):
            raise ConfigError(f"must be a number in [0, 1). Got {self.smoothing!r}", field="smoothing")


def _int_field(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"must be an integer in [{lo}, {hi}]. Got {value!r}", field=name)


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU. ``cuda`` without a GPU raises :class:`ConfigError`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("cuda was requested but no CUDA GPU is available; use cpu or auto", field="device")
    return torch.device(device)


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision == "fp16" and device.type == "cpu":
        # fp16 convolutions are not implemented (or crawl) on most CPUs: bf16 is the CPU half type.
        raise ConfigError("fp16 needs a CUDA device; on the CPU use fp32 or bf16", field="precision")
    return _DTYPES[precision]


def _placement(config: EngineConfig) -> tuple[torch.device, torch.dtype, str]:
    """Where, in which precision and by what the network runs: ``(device, dtype, backend)``.
    An ONNX file runs on the CPU (ONNX Runtime's CPU build) even when ``auto`` could pick CUDA."""
    onnx_file = is_onnx_path(config.model)
    device = resolve_device("cpu" if onnx_file and config.device == "auto" else config.device)
    dtype = resolve_dtype(config.precision, device)
    return device, dtype, resolve_backend(config.backend, device, dtype, onnx_file=onnx_file)


def input_size(height: int, width: int, short_side: int, fixed: tuple[int, int] | None = None) -> tuple[int, int]:
    """Network input ``(h, w)`` for a ``height x width`` frame: whole frame, aspect kept to within
    half a stride, both sides multiples of :data:`STRIDE`; or ``fixed`` for fixed-size models."""
    if fixed is not None:
        return fixed
    scale = short_side / min(height, width)
    h = max(STRIDE, int(round(height * scale / STRIDE)) * STRIDE)
    w = max(STRIDE, int(round(width * scale / STRIDE)) * STRIDE)
    return h, w




class FrameResult:
    """What the engine says about one frame.

    Attributes:
        cam: ``(h, w)`` float32 in ``[0, 1]``, the map at feature resolution.
        picture: ``(H, W', 3)`` uint8 BGR, the frame drawn as asked (``render=`` of
            :meth:`Engine.process`), or ``None`` when no drawing was asked for.
        predictions: top-k ``(label, probability)`` pairs, most likely first.
        explained: ``(K,)`` float32, explained variance of the leading components (K <= 5).
        component: the 1-based component shown.
        peak: ``(x, y)`` frame pixel at the centre of the map's hottest feature cell (the
            upsampled heatmap is flat across a corner cell's outer half, so its own argmax would
            land on the frame's edge).
        timings: host milliseconds per stage for this frame (a batch's time split evenly); on CUDA
            the device works asynchronously and the wait shows under ``finish``.
        heatmap: ``(H, W)`` float32 in ``[0, 1]``, the map laid over the frame's pixels
            (:func:`maps_on_frames`; computed when first read unless drawing needed it).
    """

    def __init__(self, cam: np.ndarray, predictions: list[tuple[str, float]], explained: np.ndarray, component: int,
                 peak: tuple[int, int], frame_size: tuple[int, int], *, picture: np.ndarray | None = None,
                 heatmap: np.ndarray | None = None, timings: dict[str, float] | None = None) -> None:
        self.cam, self.predictions, self.explained = cam, predictions, explained
        self.component, self.peak, self.frame_size = component, peak, frame_size
        self.picture = picture
        self.timings = timings or {}
        if heatmap is not None:
            self.__dict__["heatmap"] = heatmap

    @cached_property
    def heatmap(self) -> np.ndarray:
        return maps_on_frames(torch.from_numpy(self.cam)[None], self.frame_size)[0].numpy()

    @property
    def explained_component(self) -> float:
        """Explained variance of the shown component (0 when beyond the returned spectrum)."""
        k = self.component - 1
        return float(self.explained[k]) if k < len(self.explained) else 0.0


class Engine:
    """One network on one device, turning frames into :class:`FrameResult` objects.

    Thread-safe: :meth:`submit`/:meth:`process` and :meth:`reconfigure` may be called from
    different threads; a new setting applies from the next call.

    Args:
        config: the settings.
        model: an already loaded model to use instead of building ``config.model``.
        fallback_untrained: when ImageNet weights cannot be had (offline, nothing cached), run the
            untrained network and set :attr:`warning` instead of raising.
        resident: keep frames on the device from upload to the finished picture, with the
            sync-free solver (default: on CUDA). Forcing it on the CPU runs the same route there.
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        model: LoadedModel | None = None,
        fallback_untrained: bool = False,
        resident: bool | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.fallback_untrained = fallback_untrained
        self.warning: str | None = None
        self._config = config or EngineConfig()
        device, dtype, kind = _placement(self._config)
        if model is None:
            model, self.warning = self._load(self._config)
        self.backend = make_backend(kind, model, self._config.layer or model.spec.layer, device, dtype,
                                    optimize=self._config.optimize)
        self._resident = resident
        self._probed: dict[tuple, tuple[int, int, int]] = {}
        self._frame_hw: tuple[int, int] | None = None  # the last frame's size, for shape probes
        self._check_shapes(self.backend, self.backend.layer, self._config)
        self._normalisation()
        self.tracker = SubspaceTracker()
        self.smoother = TemporalSmoother(self._config.smoothing)

    # -- configuration ---------------------------------------------------------------------------
    @property
    def config(self) -> EngineConfig:
        return self._config

    @property
    def layer(self) -> str:
        """The target layer in use."""
        return self.backend.layer

    @property
    def loaded(self) -> LoadedModel:
        return self.backend.loaded

    @property
    def device(self) -> torch.device:
        return self.backend.device

    @property
    def dtype(self) -> torch.dtype:
        return self.backend.dtype

    @property
    def resident(self) -> bool:
        """Whether frames stay on the device from upload to the finished picture (CUDA)."""
        return self.device.type == "cuda" if self._resident is None else self._resident

    @property
    def traced(self) -> bool:
        """Whether the last forward pass ran through the traced CPU copy (:mod:`.backends.traced`)."""
        return self.backend.running == "torch (traced)"

    def _load(self, config: EngineConfig) -> tuple[LoadedModel, str | None]:
        """Build ``config``'s model; returns it and the warning to show (untrained fallback)."""
        warning = None
        if is_onnx_path(config.model):
            loaded = load_onnx(config.model)
        else:
            try:
                loaded = load_model(config.model, config.weights)
            except WeightsUnavailableError as exc:
                if not self.fallback_untrained:
                    raise
                warning = f"UNTRAINED network: {exc}. Maps and labels of random weights are meaningless."
                loaded = load_model(config.model, "none")
        if config.labels is not None:
            loaded.labels = read_labels(config.labels)
        loaded.mean = tuple(config.mean) if config.mean is not None else loaded.mean
        loaded.std = tuple(config.std) if config.std is not None else loaded.std
        return loaded, warning

    def feature_layers(self) -> list[tuple[str, tuple[int, ...]]]:
        """Every layer of the network that gives a feature map, in forward order, with its
        ``(C, h, w)`` for the input the last frame got (a square one before the first frame)."""
        with self._lock:
            return self.backend.feature_layers(self._probe_size(self._config, self.loaded))

    def _probe_size(self, config: EngineConfig, loaded: LoadedModel) -> tuple[int, int]:
        side = config.short_side
        return input_size(*(self._frame_hw or (side, side)), side, loaded.spec.fixed_input)

    def _check_shapes(self, backend: TorchBackend | OnnxBackend | OnnxFileBackend, layer: str, config: EngineConfig) -> None:
        """Refuse a layer or component that cannot work, from the shapes the network reports for the
        input the last frame would now get. Before the first frame the layer is checked on a square
        input, and the component's rank, which depends on the frame's aspect, on the first frame."""
        size = self._probe_size(config, backend.loaded)
        key = (config.model, config.weights, layer, size)
        if key not in self._probed:
            if len(self._probed) >= 64:
                self._probed.clear()
            self._probed[key] = backend.probe(layer, size)
        _check_map(self._probed[key], layer, config.component if self._frame_hw else 1)

    def _normalisation(self) -> None:
        mean, std = self.loaded.mean, self.loaded.std
        self._mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1) * 255.0
        self._inv_std = 1.0 / (torch.tensor(std, device=self.device).view(1, 3, 1, 1) * 255.0)

    def reconfigure(self, **changes: object) -> EngineConfig:
        """Apply new settings (field names of :class:`EngineConfig`) from the next frame on.

        A new model or weights rebuilds the network; a new device or precision moves it; a new
        layer or component resets the video state. A value that is invalid, or a layer or component
        the network's shapes cannot give a map for, raises and changes nothing.
        """
        unknown = set(changes) - {f.name for f in fields(EngineConfig)}
        if unknown:
            raise ConfigError(f"unknown engine setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            old = self._config
            new = replace(old, **changes)  # validates
            device, dtype, kind = _placement(new)
            new_model = (new.model, new.weights, new.labels, new.mean, new.std) != (
                old.model, old.weights, old.labels, old.mean, old.std)
            backend, warning = self.backend, self.warning
            layer = new.layer or (self.loaded.spec.layer if not new_model else None)
            if new_model:
                loaded, warning = self._load(new)
                layer = new.layer or loaded.spec.layer
                backend = make_backend(kind, loaded, layer, device, dtype, optimize=new.optimize)
            elif kind != backend.name:  # the same network, run another way: its weights move along
                backend = make_backend(kind, self.loaded, self.layer, device, dtype, optimize=new.optimize,
                                       master=getattr(_torch_of(self.backend), "_master", None))
            self._check_shapes(backend, layer, new)  # raises before anything has changed
            before = (old.model, old.weights, self.layer, old.component, old.short_side, self.device, self.dtype)
            backend.layer = layer
            if isinstance(backend, TorchBackend):
                if (device, dtype) != (backend.device, backend.dtype):
                    backend.place(device, dtype)
                backend.optimize = new.optimize
            self.backend, self.warning, self._config = backend, warning, new
            self._normalisation()
            if (new.model, new.weights, layer, new.component, new.short_side, device, dtype) != before:
                self.tracker.reset()
            self.smoother = TemporalSmoother(new.smoothing)
            return new

    def reset(self) -> None:
        """Forget the video state (call on a cut, a seek or a new source)."""
        with self._lock:
            self.tracker.reset()
            self.smoother.reset()
    # -- the frame path --------------------------------------------------------------------------
    def process(self, frames: np.ndarray | list[np.ndarray], render: RenderConfig | None = None) -> list[FrameResult]:
        """Run the model and Eigen-CAM on frames taken as consecutive video frames.

        Args:
            frames: one ``(H, W, 3)`` uint8 BGR frame, a ``(B, H, W, 3)`` array, or a list of
                frames (of one size).
            render: draw each frame this way into :attr:`FrameResult.picture` (``None``: no picture).

        Returns:
            one :class:`FrameResult` per frame, in order.
        """
        return self.submit(frames, render).result()

    def process_one(self, frame: np.ndarray, render: RenderConfig | None = None) -> FrameResult:
        return self.process(frame, render)[0]

    def submit(self, frames: np.ndarray | list[np.ndarray], render: RenderConfig | None = None) -> PendingFrames:
        """Queue frames (as :meth:`process` takes them) and return at once on CUDA; the results come
        from :meth:`PendingFrames.result`. Batches are processed in the order they are submitted."""
        batch = _as_batch(frames)
        cfg = self._config
        with self._lock, torch.inference_mode():
            t0 = time.perf_counter()
            on_device = self._upload(batch)
            x = self._network_input(on_device)
            t1 = time.perf_counter()
            logits, fmap = self.backend.forward(x)
            t2 = time.perf_counter()
            _check_map(tuple(fmap.shape[1:]), self.layer, cfg.component)
            self._frame_hw = tuple(batch.shape[1:3])
            res = eigen_cam(fmap, cfg.component, cfg.method, tracker=self.tracker, sync_free=self.resident)
            cams = res.maps if cfg.smoothing == 0 else self.smoother(res.projections)
            t3 = time.perf_counter()
            top_p, top_i = torch.softmax(logits.float(), dim=1).topk(min(cfg.top_k, logits.shape[1]), dim=1)
            peak = cams.flatten(1).argmax(dim=1)
            # One small float32 block per frame: top-k probabilities, top-k indices, peak, spectrum.
            numbers = torch.cat([top_p, top_i.float(), peak[:, None].float(), res.explained.float()], dim=1)
            drawn = None
            if render is not None and self.resident:
                drawn = finish_pictures(on_device, cams, render)
            pending = PendingFrames(
                batch, [self._download(t) for t in (numbers, cams.float(), *(drawn[1:] if drawn else ()))], render,
                labels=self.loaded.labels, k=top_p.shape[1], component=cfg.component, cuda=self.device.type == "cuda",
            )
            t4 = time.perf_counter()
        pending.timings = {"preprocess": t1 - t0, "forward": t2 - t1, "cam": t3 - t2, "finish": t4 - t3}
        return pending

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 BGR -> ``(B, 3, h, w)`` normalised network input on the device (an
        ordinary tensor: usable with autograd, e.g. by another CAM tool on the same input)."""
        with torch.no_grad():
            return self._network_input(self._upload(_as_batch(frames)))

    def _upload(self, frames: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(frames)
        if self.device.type != "cuda":
            return host
        # The caching host allocator recycles pinned blocks once their copies have completed.
        pinned = torch.empty(host.shape, dtype=torch.uint8, pin_memory=True)
        pinned.copy_(host)
        return pinned.to(self.device, non_blocking=True)

    def _download(self, t: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return t.contiguous()
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        host.copy_(t, non_blocking=True)
        return host

    def _network_input(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 BGR on the device -> ``(B, 3, h, w)`` normalised network input."""
        _, height, width, _ = frames.shape
        h, w = input_size(height, width, self._config.short_side, self.loaded.spec.fixed_input)
        x = frames.permute(0, 3, 1, 2)  # a channels-last view
        if (h, w) != (height, width):
            # Antialiased bilinear (the counterpart of cv2.INTER_AREA when shrinking). On the CPU on
            # uint8 channels-last, torch's fastest kernel: 768x432 -> 384x224 in 0.45 ms, 4x faster
            # than cv2.INTER_AREA; CUDA has no uint8 kernel and works in float.
            x = x if x.is_cpu else x.float()
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=h < height or w < width, align_corners=False)
        x = (x.flip(1).float() - self._mean) * self._inv_std  # BGR -> RGB
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x.to(self.dtype)


class PendingFrames:
    """A batch in flight. :meth:`result` waits for it (on CUDA the loop's only sync) and finishes
    on the host what is left: labels, the peak's pixel and, off the resident route, the pictures."""

    def __init__(self, frames: np.ndarray, host: list[torch.Tensor], render: RenderConfig | None, *,
                 labels: list[str], k: int, component: int, cuda: bool) -> None:
        self._frames, self._host, self._render = frames, host, render
        self._labels, self._k, self._component = labels, k, component
        self._event = None
        if cuda:  # the downloads were queued after the work: their completion is the batch's
            self._event = torch.cuda.Event()
            self._event.record()
        self.timings: dict[str, float] = {}

    def result(self) -> list[FrameResult]:
        """One :class:`FrameResult` per frame, in order."""
        t0 = time.perf_counter()
        if self._event is not None:
            self._event.synchronize()
        numbers, cams = self._host[0].numpy(), self._host[1].numpy()
        b, height, width, _ = self._frames.shape
        if len(self._host) == 3:  # drawn on the device; the heatmaps are made from the maps if asked for
            heatmaps, pictures = None, self._host[2].numpy()
        elif self._render is not None:
            heat, drawn = finish_pictures(torch.from_numpy(self._frames), torch.from_numpy(cams), self._render)
            heatmaps, pictures = heat.numpy(), drawn.numpy()
        else:
            heatmaps = pictures = None
        timings = dict(self.timings, finish=self.timings.get("finish", 0.0) + time.perf_counter() - t0)
        timings = {name: seconds * 1000.0 / b for name, seconds in timings.items()}
        k, results = self._k, []
        for i, row in enumerate(numbers):
            preds = label_predictions(self._labels, row[k : 2 * k].astype(np.int64), row[:k])
            peak = peak_pixel(int(row[2 * k]), cams.shape[1:], (height, width))
            results.append(FrameResult(
                cams[i], preds, row[2 * k + 1 :].astype(np.float32), self._component, peak, (height, width),
                picture=None if pictures is None else pictures[i], heatmap=None if heatmaps is None else heatmaps[i],
                timings=dict(timings),
            ))
        return results


def maps_on_frames(cams: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, h, w)`` maps in ``[0, 1]`` -> ``(B, H, W)`` float32 laid over ``size = (H, W)`` frames.

    Smooth, with pixel centres aligned (the feature grid tiles the network input, which tiles the
    frame): bicubic (Keys, a = -0.75) up to ``SMOOTH_STEP`` pixels a cell, then bilinear the rest of
    the way, clipped to ``[0, 1]`` (bicubic overshoots a little at edges). Bilinear alone drew a 7x7
    map's cells as visible diamonds (its level sets are squares turned 45 degrees); bicubic's are
    round, and bilinear within an 8-pixel cell of a bicubic field shows no corner. Measured on a
    7x12 map to 768x432: 0.06 ms, against 1.5 ms for bicubic all the way (within 0.013 of it).
    On the maps' device; OpenCV's kernels on the CPU (the same values as torch's within 1e-5).
    """
    height, width = size
    h, w = cams.shape[1:]
    mid = (min(height, h * SMOOTH_STEP), min(width, w * SMOOTH_STEP))
    if cams.is_cpu:
        out = []
        for c in cams.float().numpy():
            c = cv2.resize(c, (mid[1], mid[0]), interpolation=cv2.INTER_CUBIC)
            out.append(c if mid == size else cv2.resize(c, (width, height), interpolation=cv2.INTER_LINEAR))
        return torch.from_numpy(out[0][None] if len(out) == 1 else np.stack(out)).clamp_(0.0, 1.0)
    x = F.interpolate(cams.float()[:, None], size=mid, mode="bicubic", align_corners=False)
    if mid != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x[:, 0].clamp_(0.0, 1.0)


def finish_pictures(frames: torch.Tensor, cams: torch.Tensor, look: RenderConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, H, W, 3)`` uint8 BGR frames and their ``(B, h, w)`` maps -> ``(heatmaps (B, H, W),
    pictures (B, H, W', 3) uint8)``, on the tensors' device."""
    heatmaps = maps_on_frames(cams, tuple(frames.shape[1:3]))
    return heatmaps, render_frames(frames, heatmaps, look)


def peak_pixel(flat_index: int, cam_shape: tuple[int, int], frame_shape: tuple[int, int]) -> tuple[int, int]:
    """``(x, y)`` frame pixel at the centre of feature cell ``flat_index`` of a ``cam_shape`` map
    laid over a ``frame_shape`` ``(H, W)`` frame."""
    h, w = cam_shape
    i, j = divmod(flat_index, w)
    return int((j + 0.5) * frame_shape[1] / w), int((i + 0.5) * frame_shape[0] / h)


def label_predictions(labels: list[str], indices: np.ndarray, probs: np.ndarray) -> list[tuple[str, float]]:
    """Pair top-k class indices with their names: ``[(label, probability), ...]``."""
    return [(labels[j] if 0 <= j < len(labels) else str(j), float(p)) for j, p in zip(indices.tolist(), probs, strict=True)]


def _torch_of(backend: TorchBackend | OnnxBackend | OnnxFileBackend) -> TorchBackend | None:
    """The torch network behind a backend (ONNX Runtime's keeps one for probes and fallback)."""
    return backend if isinstance(backend, TorchBackend) else getattr(backend, "torch", None)


def read_labels(path: str) -> list[str]:
    """Class names from a text file, one a line (blank lines kept as empty names: line = index)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read labels file {path}: {getattr(exc, 'strerror', None) or exc}", field="labels") from None
    return [line.strip() for line in text.splitlines()]


def _check_map(shape: tuple[int, ...], layer: str, component: int) -> None:
    """A ``(C, h, w)`` feature map Eigen-CAM can show: spatial, and with the component in its rank."""
    c, h, w = shape
    if h * w < 4:
        raise LayerNotFoundError(
            f"layer {layer!r} gives {c}x{h}x{w} maps: too small to show where the network looks "
            "(choose a conv layer with a spatial output)"
        )
    if component > min(c, h * w):
        raise ConfigError(f"{component} is beyond the rank {min(c, h * w)} of layer {layer!r} ({c}x{h}x{w} maps)",
                          field="component")


def _as_batch(frames: np.ndarray | list[np.ndarray]) -> np.ndarray:
    if isinstance(frames, list):
        if not frames:
            raise ValueError("frames must not be empty")
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise ValueError(f"frames of one batch must share one size. Got {sorted(shapes)}")
        frames = np.stack(frames)
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 BGR numpy arrays. Got {getattr(frames, 'dtype', type(frames))}")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[1] < 1 or frames.shape[2] < 1:
        raise ValueError(f"frames must have a shape of (H, W, 3) or (B, H, W, 3). Got {frames.shape}")
    return np.ascontiguousarray(frames)
