"""Frames in, Eigen-CAM maps, predictions and finished pictures out: the one frame path.

The engine owns one network (through a backend, :mod:`eigencam_live.backends`) and the per-stream
state (warm-started subspace, temporal smoothing). Both front ends (the Qt app and ``annotate``)
drive it the same way::

    engine = Engine(EngineConfig(model="resnet50", weights="none"))
    results = engine.process(frames, render=RenderConfig())   # uint8 BGR (H, W, 3) or (B, H, W, 3)
    results[0].picture, results[0].heatmap, results[0].predictions

Every frame takes the same four steps, on the engine's device:

1. **preprocess** (:mod:`.inputs`): one upload of the uint8 frames (pinned, non-blocking on CUDA),
   the whole frame resized (never cropped) so that its short side is ``short_side`` and both sides
   are multiples of the network's stride (32), BGR -> RGB, normalised;
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
Step 1 can likewise run ahead in a thread of its own (:meth:`Engine.prepare`), so that the thread
that runs the network does nothing else.
"""

from __future__ import annotations

import copy
import threading
import time
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backends import OnnxBackend, OnnxFileBackend, TorchBackend, load_onnx, make_backend
from .cam import SubspaceTracker, TemporalSmoother, eigen_cam
from .config import (
    DEVICES,
    PRECISIONS,
    EngineConfig,
    _placement,
    input_size,
    resolve_device,
    resolve_dtype,
    with_overrides,
)
from .errors import ConfigError, LayerNotFoundError, WeightsUnavailableError, network_errors
from .inputs import InputSpec, Prepared, as_batch, prepare
from .models import Layer, LoadedModel, frame_detections, from_module, load_model, model_kind
from .models.detectors import keep_boxes_from
from .render import RenderConfig
from .results import (
    FrameResult,
    PendingFrames,
    batched_scores,
    class_probabilities,
    finish_pictures,
    label_predictions,
    maps_on_frames,
    peak_pixel,
)
from .threads import callers_threads

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "Engine",
    "EngineConfig",
    "FrameResult",
    "PendingFrames",
    "Prepared",
    "finish_pictures",
    "input_size",
    "label_predictions",
    "maps_on_frames",
    "peak_pixel",
    "resolve_device",
    "resolve_dtype",
]


class Engine:
    """One network on one device, turning frames into :class:`FrameResult` objects.

    Thread-safe: :meth:`submit`/:meth:`process` and :meth:`reconfigure` may be called from
    different threads; a new setting applies from the next call.

    Args:
        config: the settings.
        model: a network to use instead of building ``config.model``: an ``nn.Module`` (your own,
            weights loaded; optional attributes ``labels``, ``mean``, ``std``, ``input_size``) or a
            :class:`~eigencam_live.models.LoadedModel`. ``config.model`` and ``config.weights``
            then build nothing (``loaded.spec.name`` names the network); :meth:`reconfigure` keeps
            it for every setting but a new ``model``. The module itself is run: in eval mode, moved
            to the device and precision in use (as ``.to()`` does); hand over a copy to keep yours
            as it was (a torchvision detector, whose transform and threshold are set too, is
            copied here).
        fallback_untrained: when ImageNet weights cannot be had (offline, nothing cached), run the
            untrained network and set :attr:`warning` instead of raising.
        resident: keep frames on the device from upload to the finished picture, with the
            sync-free solver (default: on CUDA). Forcing it on the CPU runs the same route there.

    :attr:`warnings` lists what runs otherwise than asked, for as long as it does: that untrained
    network, the network's own note (a size it is held to) and the backend's (ONNX Runtime falling
    back to torch at a size, bf16 emulated), as the app and ``annotate`` say them.
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        model: LoadedModel | nn.Module | None = None,
        fallback_untrained: bool = False,
        resident: bool | None = None,
    ) -> None:
        if config is not None and not isinstance(config, EngineConfig):
            hint = ": a network goes to model= (Engine(model=net))" if isinstance(config, (nn.Module, LoadedModel)) else ""
            raise TypeError(f"config must be an EngineConfig{hint}. Got {type(config).__name__}")
        self._lock = threading.RLock()
        self.fallback_untrained = fallback_untrained
        self.warning: str | None = None
        self._config = config or EngineConfig()
        device, dtype, kind = _placement(self._config)
        self._handed: LoadedModel | None = None  # a network handed over: its labels are the caller's, as a factory's
        if model is None:
            model, self.warning = self._load(self._config)
        else:
            if isinstance(model, nn.Module) and self._config.weights not in ("imagenet", "none"):
                # (a library trial: a file that was not even there was accepted, and nothing loaded)
                raise ConfigError(f"{self._config.weights} would not be loaded: a network handed to the engine runs "
                                  "with its own weights (load them into it first: net.load_state_dict)",
                                  field="weights")
            # (its weights are its own: not "imagenet", the default a library trial saw logged)
            model = model if isinstance(model, LoadedModel) else from_module(model, weights="own")
            self._handed_own = (model.labels, model.mean, model.std)  # before the settings' (reconfigure)
            model = self._handed = with_overrides(model, self._config)
            model.handed = True
        if model.detector:  # one handed over as a module is known for one only now
            device, dtype, kind = _placement(self._config, detector=True)
        self.backend = make_backend(kind, model, self._config.layer or model.spec.layer, device, dtype,
                                    optimize=self._config.optimize)
        self._resident = resident
        self._threads: int | None = None  # the network's CPU threads, once set (see threads)
        self._probed: dict[tuple, tuple[tuple[int, ...], int | None]] = {}  # -> (map shape, classes)
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
    def threads(self) -> int | None:
        """The CPU threads the network runs on, or ``None`` (the default: the caller's counts).

        torch's OpenMP workers spin for a while after each op, and on the cores ONNX Runtime's pool
        works on they slowed its forward by a third or more (mobilenet_v3_large on 2 threads: 10.6
        to 11 ms against 7.2 with passive workers); on a busy machine a parallel op waits for a
        descheduled worker (a 0.8 ms resize took 30 ms). So wherever ONNX Runtime runs the network,
        torch's own ops on the frame path (resizing, normalising) run on one thread:

        * unset: ONNX Runtime's sessions take torch's count when they are made, and torch runs on
          one thread during the engine's calls only (:meth:`submit`, :meth:`prepare`); the
          caller's count is restored after each. Where torch runs the network, nothing changes.
        * set (the front ends, which own the process): the engine gives the threads to whatever
          runs the network and sets torch's count (``torch.set_num_threads``, which with OpenMP is
          each thread's own: in the threads that call :meth:`submit` and :meth:`prepare`, and for
          threads that start torch work later) and leaves it so: ONNX Runtime's pool gets them
          and torch one thread, or, where torch runs the network (its backend, or ONNX Runtime's
          fallback), torch gets them. ONNX Runtime sessions already built keep their count.
        """
        return self._threads

    @threads.setter
    def threads(self, count: int | None) -> None:
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError(f"threads must be a positive integer or None. Got {count!r}")
        with self._lock:
            self._threads = count
            self._share_cores()

    def _share_cores(self) -> None:
        """Apply :attr:`threads` to what runs the network now (cheap when nothing changes)."""
        count = self._threads
        if count is None:
            return
        if self.backend.name == "onnxruntime":
            self.backend.threads = count  # for the sessions still to be built
        self._torch_threads()

    def _torch_threads(self) -> None:
        """torch's thread count in the calling thread for what runs the network now (see
        :attr:`threads`). With OpenMP the count is each thread's own (set by its first parallel op
        from the last count set anywhere), so every thread that runs torch ops on the frame path
        calls this: the network's (:meth:`submit`) and a preparing one (:meth:`prepare`)."""
        count = self._threads
        backend = self.backend
        # torch keeps the count while ONNX Runtime's session is still to be made: the export and
        # the check against the torch network run torch's forward
        ort_runs = backend.name == "onnxruntime" and backend.running == "onnxruntime" and not backend.preparing
        wanted = 1 if ort_runs else count
        if wanted is not None and torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    @contextmanager
    def _torch_ops(self):
        """A call of the frame path: torch's threads as :meth:`_torch_threads` sets them, and,
        where :attr:`threads` is unset, the caller's count back after it (:data:`~.threads.callers_threads`)."""
        if self._threads is not None:
            self._torch_threads()
            yield
            return
        callers_threads.enter()
        try:
            self._torch_threads()
            yield
        finally:
            callers_threads.leave()

    @property
    def warnings(self) -> list[str]:
        """What runs otherwise than asked now (see the class docstring); ``[]`` when all is as asked.
        (A library trial: ONNX Runtime's fallback to torch was in ``backend.warning`` alone.)"""
        backend = self.backend  # (no lock: a forward holds it for seconds, and a moment's staleness is no harm)
        said = (self.warning, backend.loaded.note, backend.warning)
        return [w for i, w in enumerate(said) if w and w not in said[:i]]

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
        if model_kind(config.model) == "onnx":
            loaded = load_onnx(config.model)
        else:
            try:
                loaded = load_model(config.model, config.weights)
            except WeightsUnavailableError as exc:
                if not self.fallback_untrained:
                    raise
                warning = f"UNTRAINED network: {exc}. Maps and labels of random weights are meaningless."
                loaded = load_model(config.model, "none")
        return with_overrides(loaded, config), warning

    def feature_layers(self, frame_hw: tuple[int, int] | None = None, short_side: int | None = None) -> list[Layer]:
        """Every layer of the network that gives a feature map, in forward order, with its kind and
        its ``(C, h, w)`` for :meth:`input_size`."""
        with self._lock:
            size = self.input_size(frame_hw, short_side)
            with network_errors(f"{self.loaded.spec.name} failed on a {size[1]}x{size[0]} input"):
                return self.backend.feature_layers(size)

    def input_size(self, frame_hw: tuple[int, int] | None = None, short_side: int | None = None) -> tuple[int, int]:
        """The network input's ``(h, w)`` for a ``frame_hw`` frame (default: the last frame's size,
        a square before the first frame) at ``short_side`` (default: the config's)."""
        side = short_side or self._config.short_side
        return input_size(*(frame_hw or self._frame_hw or (side, side)), side, self.loaded.spec.fixed_input)

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
            with network_errors(f"{backend.loaded.spec.name} failed on a {size[1]}x{size[0]} input"):
                self._probed[key] = (backend.probe(layer, size), backend.loaded.classes)
        shape, classes = self._probed[key]
        _check_map(shape, layer, config.component if self._frame_hw else 1)
        labels = backend.loaded.labels
        if config.labels is not None and classes is None and not backend.loaded.detector:
            raise ConfigError(f"{Path(backend.loaded.spec.name).name} gives no class scores: the labels would name "
                              "nothing", field="labels")
        if config.labels is not None and classes and len(labels) != classes:
            given = "the labels given name" if isinstance(config.labels, tuple) else f"{config.labels} names"
            raise ConfigError(f"{given} {len(labels)} classes, but {Path(backend.loaded.spec.name).name} gives "
                              f"{classes} scores: one name a class, in the network's order", field="labels")
        handed = self._handed is not None and backend.loaded.net is self._handed.net  # (or its copy: reconfigure)
        own = handed or model_kind(config.model) == "factory"  # not a zoo's labels
        if labels and classes and len(labels) != classes and own:
            name = backend.loaded.spec.name if handed else config.model
            raise ConfigError(f"{name} sets {len(labels)} labels on its network, which gives {classes} scores: "
                              "one name per score, in its order (or --labels FILE)", field="model")

    def _normalisation(self) -> None:
        """The input's spec for the current settings: a new one only where it changed (a batch
        prepared ahead under the old one is then prepared again)."""
        spec = InputSpec.of(self._config.short_side, self.loaded.spec.fixed_input, self.loaded.mean, self.loaded.std,
                            self.device, self.dtype)
        if getattr(self, "_input", None) is None or self._input.key != spec.key:
            self._input = spec

    def preparing(self, frame_hw: tuple[int, int] | None = None) -> bool:
        """Whether processing a frame of ``frame_hw`` (default: the last frame's size) first prepares
        what runs the network, for seconds: an ONNX export or session (``backend.preparing``), or
        torch's traced copy for its input size (:meth:`.TorchBackend.prepares`). The app veils the
        wait and says why."""
        backend = self.backend
        if isinstance(backend, (TorchBackend, OnnxBackend)):  # (ONNX Runtime: each new size is checked)
            return backend.prepares((self.loaded.channels, *self.input_size(frame_hw)))
        return backend.preparing

    def reconfigure(self, **changes: object) -> EngineConfig:
        """Apply new settings (field names of :class:`EngineConfig`) from the next frame on.

        A new model or weights rebuilds the network; a new model starts on its own default layer
        unless ``layer`` is given with it. A new device or precision moves the network; a new
        layer or component resets the video state. A value that is invalid, or a layer or component
        the network's shapes cannot give a map for, raises and changes nothing.
        """
        unknown = set(changes) - {f.name for f in fields(EngineConfig)}
        if unknown:
            raise ConfigError(f"unknown engine setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            old = self._config
            if "model" in changes and changes["model"] != old.model and "layer" not in changes:
                # the last network's layer is no name in this one (a library trial: LayerNotFoundError
                # for resnet18 after a layer of one's own module); the app and the CLI do the same
                changes = {**changes, "layer": None}
            new = replace(old, **changes)  # validates
            new_model = (new.model, new.weights, new.labels, new.mean, new.std) != (
                old.model, old.weights, old.labels, old.mean, old.std)
            handed = self.loaded is self._handed and new.model == old.model  # a network handed over stays
            if handed and new.weights != old.weights:
                raise ConfigError(f"{self.loaded.spec.name} was handed to the engine with its weights: load others into it "
                                  "(load_state_dict) and hand it over again", field="weights")
            device, dtype, kind = _placement(new, detector=(not new_model or handed) and self.loaded.detector)
            backend, warning = self.backend, self.warning
            layer = new.layer or (self.loaded.spec.layer if not new_model else None)
            if new_model and handed:  # its labels or normalisation, from its own again (a library trial: the
                fresh = copy.copy(self._handed)  # engine loaded config.model in its place)
                fresh.labels, fresh.mean, fresh.std = self._handed_own
                loaded = with_overrides(fresh, new)
                layer = new.layer or self.layer
                backend = make_backend(kind, loaded, layer, device, dtype, optimize=new.optimize,
                                       master=getattr(_torch_of(self.backend), "_master", None))
            elif new_model:
                loaded, warning = self._load(new)
                layer = new.layer or loaded.spec.layer
                backend = make_backend(kind, loaded, layer, device, dtype, optimize=new.optimize)
            elif kind != backend.name:  # the same network, run another way: its weights move along
                backend = make_backend(kind, self.loaded, self.layer, device, dtype, optimize=new.optimize,
                                       master=getattr(_torch_of(self.backend), "_master", None))
            try:
                self._check_shapes(backend, layer, new)  # raises before anything has changed
            except BaseException:
                self._restore_network(backend)
                raise
            before = (old.model, old.weights, self.layer, old.component, old.short_side, self.device, self.dtype)
            backend.layer = layer
            if isinstance(backend, TorchBackend):
                if (device, dtype) != (backend.device, backend.dtype):
                    backend.place(device, dtype)
                backend.optimize = new.optimize
            self.backend, self.warning, self._config = backend, warning, new
            if new_model and handed:
                self._handed = backend.loaded
            self._normalisation()
            self._share_cores()
            # (the layer as the backend named it: an ONNX file's short name is its node output's)
            if (new.model, new.weights, backend.layer, new.component, new.short_side, device, dtype) != before:
                self.tracker.reset()
                self.smoother = TemporalSmoother(new.smoothing)
            elif new.smoothing != old.smoothing:  # a score or a method change keeps the smoothed maps
                self.smoother = TemporalSmoother(new.smoothing)
            return new

    def _restore_network(self, refused: TorchBackend | OnnxBackend | OnnxFileBackend) -> None:
        """A new backend of the network in use, refused: its network back as the backend in use had
        it (the new one moved and cast it: a review found an engine in fp32 left with bf16 weights,
        failing every frame), exactly, from the fp32 weights the new one kept."""
        old, new = _torch_of(self.backend), _torch_of(refused)
        if refused is self.backend or old is None or new is None or old.loaded.net is not new.loaded.net:
            return
        if old._master is None:
            old._master = new._master
        old.place(old.device, old.dtype)

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

    def submit(self, frames: np.ndarray | list[np.ndarray] | Prepared, render: RenderConfig | None = None) -> PendingFrames:
        """Queue frames (as :meth:`process` takes them, or as :meth:`prepare` made them) and return
        at once on CUDA; the results come from :meth:`PendingFrames.result`. Batches are processed
        in the order they are submitted. A batch prepared before a setting that changes the input
        (short side, model, device, precision) is prepared again."""
        if render is not None and not isinstance(render, RenderConfig):
            raise TypeError(f"render must be a RenderConfig (or None: no picture). Got {type(render).__name__}")
        ahead = frames if isinstance(frames, Prepared) else None
        batch = ahead.frames if ahead is not None else as_batch(frames)
        # another engine in the process may have set torch's threads
        with self._lock, torch.inference_mode(), self._torch_ops():
            cfg = self._config
            if ahead is None or ahead.spec is not self._input:
                ahead = self._prepare(batch)
            on_device, x = ahead.on_device, ahead.x
            t1 = time.perf_counter()
            b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
            if self.loaded.detector:  # its own score threshold under the one asked for
                keep_boxes_from(self.loaded.net, cfg.score)
            with network_errors(f"{self.loaded.spec.name} failed on {b} frame{'s' if b > 1 else ''} of {w}x{h}",
                                " (--batch-size 1 runs one frame at a time)" if b > 1 else ""):
                if cfg.method == "randomized" or self.resident:  # neither takes a Gram matrix
                    (outputs, fmap), gram = self.backend.forward(x), None
                else:
                    outputs, fmap, gram = self.backend.forward_gram(x)
            detections = None
            if isinstance(outputs, list):  # a detector: boxes, not class scores
                detections = frame_detections(outputs, self.loaded.labels, cfg.score, tuple(x.shape[-2:]),
                                              tuple(batch.shape[1:3]))
                logits = fmap.new_zeros((fmap.shape[0], 0))
            else:  # a backbone without a classifier head gives maps and no predictions
                outputs = batched_scores(outputs, b)
                scores = outputs.dim() == 2 and outputs.is_floating_point() and not self.loaded.headless
                logits = outputs if scores else outputs.new_zeros((outputs.shape[0], 0))
            self._torch_threads()  # the first forward pass may have fallen back to torch
            t2 = time.perf_counter()
            _check_map(tuple(fmap.shape[1:]), self.layer, cfg.component)
            self._frame_hw = tuple(batch.shape[1:3])
            res = eigen_cam(fmap, cfg.component, cfg.method, tracker=self.tracker, sync_free=self.resident, gram=gram)
            cams = res.maps if cfg.smoothing == 0 else self.smoother(res.projections)
            t3 = time.perf_counter()
            top_p, top_i = class_probabilities(logits, self.loaded.scores_from).topk(min(cfg.top_k, logits.shape[1]), dim=1)
            peak = cams.flatten(1).argmax(dim=1)
            # One small float32 block per frame: top-k probabilities, top-k indices, peak, spectrum.
            numbers = torch.cat([top_p, top_i.float(), peak[:, None].float(), res.explained.float()], dim=1)
            drawn = None
            if render is not None and self.resident:
                drawn = finish_pictures(on_device, cams, render, detections)
            pending = PendingFrames(
                batch, [self._download(t) for t in (numbers, cams.float(), *(drawn[1:] if drawn else ()))], render,
                labels=self.loaded.labels, k=top_p.shape[1], component=cfg.component, cuda=self.device.type == "cuda",
                detections=detections,
            )
            t4 = time.perf_counter()
        pending.timings = {"preprocess": ahead.seconds, "forward": t2 - t1, "cam": t3 - t2, "finish": t4 - t3}
        return pending

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 BGR -> ``(B, 3, h, w)`` normalised network input on the device (an
        ordinary tensor: usable with autograd, e.g. by another CAM tool on the same input)."""
        with torch.no_grad():
            return self._prepare(as_batch(frames)).x

    def prepare(self, frames: np.ndarray | list[np.ndarray]) -> Prepared:
        """Make frames (as :meth:`process` takes them) into the network's input for a later
        :meth:`submit`, without waiting for the batch the network is running: a pipeline
        (``annotate``) prepares the next batch in its own thread meanwhile, off the network's."""
        with torch.inference_mode():
            return self._prepare(as_batch(frames))

    def _prepare(self, batch: np.ndarray) -> Prepared:
        spec = self._input  # one read: reconfigure replaces it whole
        with self._torch_ops():  # this thread's own count (it may not be the network's thread)
            return prepare(batch, spec)

    def _download(self, t: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return t.contiguous()
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        host.copy_(t, non_blocking=True)
        return host

def _torch_of(backend: TorchBackend | OnnxBackend | OnnxFileBackend) -> TorchBackend | None:
    """The torch network behind a backend (ONNX Runtime's keeps one for probes and fallback)."""
    return backend if isinstance(backend, TorchBackend) else getattr(backend, "torch", None)


def _check_map(shape: tuple[int, ...], layer: str, component: int) -> None:
    """A ``(C, h, w)`` feature map Eigen-CAM can show: spatial, and with the component in its rank."""
    c, h, w = shape
    if h * w < 4:
        raise LayerNotFoundError(
            f"layer {layer!r} gives {c}x{h}x{w} maps: too small to show where the network looks "
            "(a larger input, --short-side, or an earlier layer with a spatial output)"
        )
    if component > min(c, h * w):
        raise ConfigError(f"{component} is beyond the rank {min(c, h * w)} of layer {layer!r} ({c}x{h}x{w} maps)",
                          field="component")
