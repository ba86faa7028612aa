"""Frames in, Eigen-CAM maps and predictions out.

The engine owns one model on one device and the per-stream state (warm-started subspace, temporal
smoothing). Both front ends (the Qt app and ``annotate``) drive it the same way::

    engine = Engine(EngineConfig(model="resnet50", weights="none"))
    results = engine.process(frames)          # frames: uint8 BGR (H, W, 3) or (B, H, W, 3)
    picture = render(frames[0], results[0].heatmap)

Geometry: the whole frame is resized (never cropped) so that its short side is ``short_side`` and
both sides are multiples of the network's stride (32), so the feature grid tiles the input exactly
and the input tiles the frame exactly; the map is resized back over the whole frame and sits on the
pixels it came from.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields, replace

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .cam import METHODS, SubspaceTracker, TemporalSmoother, eigen_cam
from .errors import ConfigError, LayerNotFoundError, WeightsUnavailableError
from .models import MODELS, ActivationCapture, LoadedModel, find_layer, load_model, to_feature_map
from .traced import TRACED_FAMILIES, TracedForward, build_traced

__all__ = ["DEVICES", "PRECISIONS", "DeviceResult", "Engine", "EngineConfig", "FrameResult", "input_size", "peak_pixel", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
STRIDE = 32
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings; validated on construction (:class:`ConfigError` names the bad field).

    Attributes:
        model: a key of :data:`eigencam_live.models.MODELS`.
        weights: ``imagenet``, ``none`` or a state_dict path.
        layer: target layer (dotted module name); ``None`` = the model's default.
        component: 1-based principal component (1 to 5 in the UI; any up to the rank here).
        method: ``auto``, ``exact`` or ``randomized``.
        short_side: the network input's short side in pixels (ignored by fixed-size models).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        precision: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp32``, ``fp16`` or ``bf16``.
        top_k: number of predictions returned.
        smoothing: temporal smoothing of maps in ``[0, 1)``; 0 = off.
        optimize: on the CPU in fp32, run conv-BN networks through a traced, frozen, optimised
            copy (:mod:`eigencam_live.traced`), checked against the eager network when built.
    """

    model: str = "mobilenet_v3_large"
    weights: str = "imagenet"
    layer: str | None = None
    component: int = 1
    method: str = "auto"
    short_side: int = 224
    device: str = "auto"
    precision: str = "auto"
    top_k: int = 5
    smoothing: float = 0.0
    optimize: bool = True

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            import difflib

            close = difflib.get_close_matches(self.model, list(MODELS), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else f" Available: {', '.join(sorted(MODELS))}"
            raise ConfigError(f"unknown model {self.model!r}.{hint}", field="model")
        if not isinstance(self.weights, str) or not self.weights:
            raise ConfigError(f"must be imagenet, none or a file path. Got {self.weights!r}", field="weights")
        _int_field("component", self.component, 1, 2048)
        if self.method not in METHODS:
            raise ConfigError(f"must be one of {', '.join(METHODS)}. Got {self.method!r}", field="method")
        _int_field("short_side", self.short_side, 32, 4096)
        if self.device not in DEVICES:
            raise ConfigError(f"must be one of {', '.join(DEVICES)}. Got {self.device!r}", field="device")
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


def input_size(height: int, width: int, short_side: int, fixed: tuple[int, int] | None = None) -> tuple[int, int]:
    """Network input ``(h, w)`` for a ``height x width`` frame: whole frame, aspect kept to within
    half a stride, both sides multiples of :data:`STRIDE`; or ``fixed`` for fixed-size models."""
    if fixed is not None:
        return fixed
    scale = short_side / min(height, width)
    h = max(STRIDE, int(round(height * scale / STRIDE)) * STRIDE)
    w = max(STRIDE, int(round(width * scale / STRIDE)) * STRIDE)
    return h, w


@dataclass
class FrameResult:
    """What the engine says about one frame.

    Attributes:
        cam: ``(h, w)`` float32 in ``[0, 1]``, the map at feature resolution.
        heatmap: ``(H, W)`` float32 in ``[0, 1]``, the map resized onto the frame's pixels.
        predictions: top-k ``(label, probability)`` pairs, most likely first.
        explained: ``(K,)`` float32, explained variance of the leading components (K <= 5).
        component: the 1-based component shown.
        peak: ``(x, y)`` frame pixel at the centre of the map's hottest feature cell (the
            upsampled heatmap is flat across a corner cell's outer half, so its own argmax would
            land on the frame's edge).
        timings: milliseconds per stage for this frame (a batch's time split evenly).
    """

    cam: np.ndarray
    heatmap: np.ndarray
    predictions: list[tuple[str, float]]
    explained: np.ndarray
    component: int
    peak: tuple[int, int]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def explained_component(self) -> float:
        """Explained variance of the shown component (0 when beyond the returned spectrum)."""
        k = self.component - 1
        return float(self.explained[k]) if k < len(self.explained) else 0.0


class Engine:
    """One model on one device, turning frames into :class:`FrameResult` objects.

    Thread-safe: :meth:`process` and :meth:`reconfigure` may be called from different threads; a new
    setting applies from the next call.

    Args:
        config: the settings.
        model: an already loaded model to use instead of building ``config.model``.
        fallback_untrained: when ImageNet weights cannot be had (offline, nothing cached), run the
            untrained network and set :attr:`warning` instead of raising.
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        model: LoadedModel | None = None,
        fallback_untrained: bool = False,
    ) -> None:
        self._lock = threading.RLock()
        self.fallback_untrained = fallback_untrained
        self.warning: str | None = None
        self._config = config or EngineConfig()
        self.device = resolve_device(self._config.device)
        self.dtype = resolve_dtype(self._config.precision, self.device)
        self.loaded = model
        if model is None:
            self.loaded, self.warning = self._load(self._config)
        self._master: dict[str, torch.Tensor] | None = None
        self._traced: dict[tuple, TracedForward | None] = {}
        self._last_traced = False
        self._layer = self._check_layer(self._config.layer)
        self._place()
        self.tracker = SubspaceTracker()
        self.smoother = TemporalSmoother(self._config.smoothing)

    # -- configuration ---------------------------------------------------------------------------
    @property
    def config(self) -> EngineConfig:
        return self._config

    @property
    def layer(self) -> str:
        """The target layer in use."""
        return self._layer

    def _load(self, config: EngineConfig) -> tuple[LoadedModel, str | None]:
        """Build ``config``'s model; returns it and the warning to show (untrained fallback)."""
        try:
            return load_model(config.model, config.weights), None
        except WeightsUnavailableError as exc:
            if not self.fallback_untrained:
                raise
            warning = f"UNTRAINED network: {exc}. Maps and labels of random weights are meaningless."
            return load_model(config.model, "none"), warning

    def _check_layer(self, layer: str | None) -> str:
        name = layer or self.loaded.spec.layer
        find_layer(self.loaded.net, name)
        return name

    def _place(self) -> None:
        self._traced = {}  # copies of the old weights, device or precision
        net = self.loaded.net
        if self.dtype != torch.float32 and self._master is None:
            # Casting weights in place is lossy: keep an fp32 copy so fp32 can be had back exactly.
            self._master = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
        net = net.to(device=self.device, dtype=torch.float32 if self._master is not None else self.dtype)
        if self._master is not None:
            net.load_state_dict(self._master)
            net = net.to(dtype=self.dtype)
        if self.device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True
        net.eval()
        self.loaded.net = net
        self._mean = torch.tensor(self.loaded.mean, device=self.device).view(1, 3, 1, 1) * 255.0
        self._inv_std = 1.0 / (torch.tensor(self.loaded.std, device=self.device).view(1, 3, 1, 1) * 255.0)

    def reconfigure(self, **changes: object) -> EngineConfig:
        """Apply new settings (field names of :class:`EngineConfig`) from the next frame on.

        A new model or weights rebuilds the network; a new device or precision moves it; a new
        layer or component resets the video state. Invalid values raise and change nothing.
        """
        unknown = set(changes) - {f.name for f in fields(EngineConfig)}
        if unknown:
            raise ConfigError(f"unknown engine setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            old = self._config
            new = replace(old, **changes)  # validates
            device = resolve_device(new.device)
            dtype = resolve_dtype(new.precision, device)
            loaded, warning = self.loaded, self.warning
            new_model = (new.model, new.weights) != (old.model, old.weights)
            if new_model:
                loaded, warning = self._load(new)
            name = new.layer or loaded.spec.layer
            find_layer(loaded.net, name)
            before = (old.model, old.weights, self._layer, old.component, old.short_side, self.device, self.dtype)
            moved = new_model or (device, dtype) != (self.device, self.dtype)
            self.loaded, self.device, self.dtype, self._layer = loaded, device, dtype, name
            self.warning = warning  # only now: a failed reload leaves the old model and its warning
            if new_model:
                self._master = None
            self._config = new
            if moved:  # anything else keeps the placed network and its traced copies
                self._place()
            if (new.model, new.weights, name, new.component, new.short_side, device, dtype) != before:
                self.tracker.reset()
            self.smoother = TemporalSmoother(new.smoothing)
            return new

    def reset(self) -> None:
        """Forget the video state (call on a cut, a seek or a new source)."""
        with self._lock:
            self.tracker.reset()
            self.smoother.reset()

    # -- processing ------------------------------------------------------------------------------
    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 BGR -> ``(B, 3, h, w)`` normalised network input on the device."""
        b, height, width, _ = frames.shape
        h, w = input_size(height, width, self._config.short_side, self.loaded.spec.fixed_input)
        x = torch.from_numpy(np.ascontiguousarray(frames))
        if (h, w) != (height, width):
            # torch's uint8 antialiased bilinear, on the CPU: 4x faster than cv2.INTER_AREA at a
            # non-integer ratio (768x432 -> 384x224: 0.45 vs 1.8 ms) and the filter infer_device uses.
            x = F.interpolate(x.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", antialias=h < height or w < width,
                              align_corners=False).permute(0, 2, 3, 1)
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).flip(1).float()  # BGR -> RGB
        x = (x - self._mean) * self._inv_std
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x.to(self.dtype)

    def process(self, frames: np.ndarray | list[np.ndarray]) -> list[FrameResult]:
        """Run the model and Eigen-CAM on frames taken as consecutive video frames.

        Args:
            frames: one ``(H, W, 3)`` uint8 BGR frame, a ``(B, H, W, 3)`` array, or a list of
                frames (of one size).

        Returns:
            one :class:`FrameResult` per frame, in order.
        """
        batch = _as_batch(frames)
        with self._lock:
            return self._process(batch)

    def process_one(self, frame: np.ndarray) -> FrameResult:
        return self.process(frame)[0]

    @property
    def traced(self) -> bool:
        """Whether the last forward pass ran through the traced CPU copy (:mod:`.traced`)."""
        return self._last_traced

    def _check_map(self, fmap: torch.Tensor) -> None:
        """A feature map Eigen-CAM can show: spatial, and with the chosen component in its rank."""
        _, c, h, w = fmap.shape
        if h * w < 4:
            raise LayerNotFoundError(
                f"layer {self._layer!r} gives {c}x{h}x{w} maps: too small to show where the network looks "
                "(choose a conv layer with a spatial output)"
            )
        if self._config.component > min(c, h * w):
            raise ConfigError(
                f"component {self._config.component} is beyond this layer's rank {min(c, h * w)} "
                f"(layer {self._layer!r} gives {(c, h, w)})"
            )

    def _traced_for(self, x: torch.Tensor) -> TracedForward | None:
        """The traced copy for this input shape, built on first use (CPU, fp32, conv-BN families)."""
        if not (self._config.optimize and self.device.type == "cpu" and self.dtype == torch.float32
                and self.loaded.spec.name.startswith(TRACED_FAMILIES)):
            return None
        key = (self._layer, tuple(x.shape))
        if key not in self._traced and any(
            k[0] == key[0] and k[1][1:] == key[1][1:] and k[1][0] > key[1][0] for k in self._traced
        ):
            return None  # a video's last, shorter batch: not worth a new copy, the eager net runs it
        if key not in self._traced:
            if len(self._traced) >= 4:  # a few input shapes at most; drop the oldest
                self._traced.pop(next(iter(self._traced)))
            self._traced[key] = build_traced(self.loaded.net, self._layer, self.loaded.spec.layout, x)
        return self._traced[key]

    def _forward(self, x: torch.Tensor, traced: TracedForward | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, (B, C, h, w) feature map)`` of the target layer."""
        self._last_traced = traced is not None
        if traced is not None:
            logits, raw = traced(x)
            return logits, to_feature_map(raw, self.loaded.spec.layout)
        with ActivationCapture(self.loaded.net, self._layer, self.loaded.spec.layout) as cap:
            logits = self.loaded.net(x)
            return logits, cap.map(self._layer)

    def _process(self, frames: np.ndarray) -> list[FrameResult]:
        cfg = self._config
        b, height, width, _ = frames.shape
        t0 = time.perf_counter()
        x = self.preprocess(frames)
        t1 = time.perf_counter()
        traced = self._traced_for(x)
        with torch.inference_mode():
            logits, fmap = self._forward(x, traced)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            self._check_map(fmap)
            res = eigen_cam(fmap, cfg.component, cfg.method, tracker=self.tracker)
            maps = res.maps if cfg.smoothing == 0 else self.smoother(res.projections)
            probs = torch.softmax(logits.float(), dim=1)
            top_p, top_i = probs.topk(min(cfg.top_k, probs.shape[1]), dim=1)
            cams = maps.float().cpu().numpy()
            explained = res.explained.cpu().numpy()
            top_p, top_i = top_p.cpu().numpy(), top_i.cpu().numpy()
        t3 = time.perf_counter()
        labels = self.loaded.labels
        results = []
        for i in range(b):
            heat = cv2.resize(cams[i], (width, height), interpolation=cv2.INTER_LINEAR)
            np.clip(heat, 0.0, 1.0, out=heat)
            px, py = peak_pixel(int(np.argmax(cams[i])), cams[i].shape, (height, width))
            preds = label_predictions(labels, top_i[i], top_p[i])
            results.append(FrameResult(cams[i], heat, preds, explained[i], cfg.component, (int(px), int(py))))
        t4 = time.perf_counter()
        per = 1000.0 / b
        timing = {
            "preprocess": (t1 - t0) * per,
            "forward": (t2 - t1) * per,
            "cam": (t3 - t2) * per,
            "resize": (t4 - t3) * per,
        }
        for r in results:
            r.timings = dict(timing)
        return results

    def infer_device(self, frames: torch.Tensor, *, sync_free: bool | None = None) -> DeviceResult:
        """Device-resident inference: nothing here waits for the host.

        Args:
            frames: ``(B, H, W, 3)`` uint8 BGR tensor, already on :attr:`device`.
            sync_free: use the sync-free decomposition (default: on CUDA).

        Returns:
            :class:`DeviceResult`, every tensor on :attr:`device`.
        """
        cfg = self._config
        if sync_free is None:
            sync_free = self.device.type == "cuda"
        with self._lock, torch.inference_mode():
            b, height, width, _ = frames.shape
            h, w = input_size(height, width, cfg.short_side, self.loaded.spec.fixed_input)
            x = frames.permute(0, 3, 1, 2).flip(1).float()  # BGR -> RGB
            if (h, w) != (height, width):
                # Antialiased bilinear: the GPU counterpart of cv2.INTER_AREA for downscaling.
                x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=h < height or w < width, align_corners=False)
            x = (x - self._mean) * self._inv_std
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            x = x.to(self.dtype)
            with ActivationCapture(self.loaded.net, self._layer, self.loaded.spec.layout) as cap:
                logits = self.loaded.net(x)
                fmap = cap.map(self._layer)
            self._check_map(fmap)
            res = eigen_cam(fmap, cfg.component, cfg.method, tracker=self.tracker, sync_free=sync_free)
            cams = res.maps if cfg.smoothing == 0 else self.smoother(res.projections)
            heat = F.interpolate(cams[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
            probs = torch.softmax(logits.float(), dim=1)
            top_p, top_i = probs.topk(min(cfg.top_k, probs.shape[1]), dim=1)
            return DeviceResult(cams, heat.clamp_(0, 1), res.explained, top_p, top_i)


@dataclass
class DeviceResult:
    """:meth:`Engine.infer_device` output; every tensor stays on the engine's device.

    Attributes:
        cams: ``(B, h, w)`` float32 maps in ``[0, 1]`` at feature resolution.
        heatmaps: ``(B, H, W)`` float32 maps in ``[0, 1]`` over the frames' pixels.
        explained: ``(B, K)`` explained variance of the leading components.
        top_p, top_i: ``(B, k)`` top-k probabilities and class indices.
    """

    cams: torch.Tensor
    heatmaps: torch.Tensor
    explained: torch.Tensor
    top_p: torch.Tensor
    top_i: torch.Tensor


def peak_pixel(flat_index: int, cam_shape: tuple[int, int], frame_shape: tuple[int, int]) -> tuple[int, int]:
    """``(x, y)`` frame pixel at the centre of feature cell ``flat_index`` of a ``cam_shape`` map
    laid over a ``frame_shape`` ``(H, W)`` frame."""
    h, w = cam_shape
    i, j = divmod(flat_index, w)
    return int((j + 0.5) * frame_shape[1] / w), int((i + 0.5) * frame_shape[0] / h)


def label_predictions(labels: list[str], indices: np.ndarray, probs: np.ndarray) -> list[tuple[str, float]]:
    """Pair top-k class indices with their names: ``[(label, probability), ...]``."""
    return [(labels[j] if 0 <= j < len(labels) else str(j), float(p)) for j, p in zip(indices.tolist(), probs, strict=True)]


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
    return frames
