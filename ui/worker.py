"""The pipeline worker: capture -> engine -> render (-> recorder) off the GUI thread.

One plain Python thread owns the engine, the capture and the recorder. The GUI talks to it only
through :meth:`Pipeline.command`-style methods (a command queue, never a shared mutable object) and
hears back through Qt signals emitted from the worker thread (queued to the GUI thread).

Frames reach the GUI newest-only: the worker overwrites a one-packet slot and emits
:attr:`Pipeline.frame_ready` only when the GUI has taken the previous packet, so the event queue
holds at most one frame notification however slow the GUI is, and a slow model lowers the frame
rate, never the responsiveness.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PyQt5.QtCore import QObject, pyqtSignal

from eigencam_live.engine import Engine, EngineConfig, FrameResult
from eigencam_live.errors import EigenCamError
from eigencam_live.render import RenderConfig, render

__all__ = ["EngineStatus", "Packet", "Pipeline"]

#: How much lower than the GUI thread the worker runs (nice steps; 0 = same priority). Kept at 0:
#: measured on a busy 2-core machine, nice 4 made GUI stalls worse (max 99-185 ms against 36-39 ms),
#: because the GUI thread then waits for the GIL held by a worker the OS does not schedule.
WORKER_NICE = 0


@dataclass
class Packet:
    """One finished frame for display.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR, what is shown (owned: never touched again by the worker).
        frame: the source's ``Frame`` (raw image, index, pts, captured time).
        result: the engine's :class:`FrameResult`.
        render: the :class:`RenderConfig` used to draw ``image``.
        process_ms: engine + render time of this frame, milliseconds.
        done: ``time.monotonic()`` when the worker finished it.
        started: ``time.monotonic()`` when the worker began it.
    """

    image: np.ndarray
    frame: Any
    result: FrameResult
    render: RenderConfig
    process_ms: float
    done: float
    started: float = 0.0


@dataclass
class EngineStatus:
    """What the window shows about the engine (sent after every (re)configuration)."""

    config: EngineConfig
    layer: str
    device: str
    dtype: str
    trained: bool
    warning: str | None


@dataclass
class _Rates:
    """Rolling rates over the last couple of seconds."""

    window: float = 2.0
    stamps: deque = field(default_factory=lambda: deque(maxlen=256))

    def tick(self, t: float) -> None:
        self.stamps.append(t)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self.stamps and now - self.stamps[0] > self.window:
            self.stamps.popleft()
        if len(self.stamps) < 2:
            return 0.0
        span = self.stamps[-1] - self.stamps[0]
        return (len(self.stamps) - 1) / span if span > 0 else 0.0


class Pipeline(QObject):
    """Drives source -> engine -> render in a worker thread.

    Args:
        engine_config: initial engine settings.
        render_config: initial drawing settings.
        demo_size: ``(width, height)`` of the demo scene.
        demo_fps: frame rate of the demo scene.

    Signals (all emitted from the worker thread, delivered queued on the GUI thread):
        frame_ready: a new :class:`Packet` waits in :meth:`take`.
        error(str): a one-line message for the user; the pipeline keeps running.
        engine_changed(EngineStatus): the engine was (re)built or reconfigured.
        layers_ready(str, list): model name and its ``(name, (C, h, w))`` feature layers.
        source_opened(object): the new source's ``SourceInfo``.
        source_ended(): end of a file.
        recording_changed(bool, str): recording on/off and the file path.
        cameras_found(list): indices of the cameras that open.
        paused_changed(bool): the worker has taken a pause/resume into account (no frame is
            processed after ``True`` until a step, a seek or a change of setting).
        busy(str): a long operation started ("" when it finished), e.g. loading a model.
    """

    frame_ready = pyqtSignal()
    error = pyqtSignal(str)
    engine_changed = pyqtSignal(object)
    layers_ready = pyqtSignal(str, list)
    source_opened = pyqtSignal(object)
    source_ended = pyqtSignal()
    recording_changed = pyqtSignal(bool, str)
    busy = pyqtSignal(str)
    cameras_found = pyqtSignal(list)
    paused_changed = pyqtSignal(bool)

    def __init__(
        self,
        engine_config: EngineConfig,
        render_config: RenderConfig | None = None,
        *,
        demo_size: tuple[int, int] = (640, 480),
        demo_fps: float = 30.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine_config = engine_config
        self._render = render_config or RenderConfig()
        self.demo_size = demo_size
        self.demo_fps = demo_fps
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._slot_lock = threading.Lock()
        self._slot: Packet | None = None
        self._pending = False
        # Worker-thread state (touched only by the worker once started).
        self.engine: Engine | None = None
        self._capture = None
        self._info = None
        self._paused = False
        self._ended = False
        self._last_frame = None
        self._last_result: FrameResult | None = None
        self._sink = None
        self._record_t0: float | None = None
        self._pace_anchor: tuple[float, float] | None = None
        self._last_report: tuple[str, float] = ("", 0.0)
        self._layers_cache: dict[tuple[str, str], list] = {}
        # Read by the GUI (plain floats/ints: a torn read is harmless).
        self._captures: deque = deque(maxlen=64)
        self.process_rate = _Rates()
        self.process_ms = 0.0
        self.dropped = 0
        self.frames_processed = 0
        self.source_fps = 0.0

    # -- GUI-side API ----------------------------------------------------------------------------
    def start(self, source: str | int | None = None) -> None:
        """Start the worker thread (building the engine there) and open ``source`` if given."""
        if self._thread is not None:
            return
        if source is not None:
            self.open_source(source)
        # Joined on close (stop()); a daemon only so that a model download stuck on a dead network
        # cannot keep the process alive after the window has gone.
        self._thread = threading.Thread(target=self._run, name="eigencam-pipeline", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.5) -> bool:
        """Stop the worker, close the source and the recorder; ``True`` if the thread ended in time."""
        self._stop.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        alive = self._thread.is_alive()
        if not alive:
            self._thread = None
        return not alive

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _send(self, *command: Any) -> None:
        self._commands.put(command)
        self._wake.set()

    def find_cameras(self) -> None:
        """Probe for cameras in the worker (opening a camera can take a second); see ``cameras_found``."""
        self._send("cameras")

    def open_source(self, spec: str | int) -> None:
        self._send("source", spec)

    def reconfigure(self, **changes: Any) -> None:
        """Engine settings (fields of :class:`EngineConfig`), applied from the next frame."""
        self._send("engine", changes)

    def set_render(self, config: RenderConfig) -> None:
        self._send("render", config)

    def set_paused(self, paused: bool) -> None:
        self._send("pause", bool(paused))

    def step(self, delta: int = 1) -> None:
        """Process one frame forward (``+1``) or, on seekable files, back (``-1``); pauses."""
        self._send("step", int(delta))

    def seek(self, index: int) -> None:
        self._send("seek", int(index))

    def start_recording(self, path: str | Path) -> None:
        self._send("record", str(path))

    def stop_recording(self) -> None:
        self._send("record", None)

    @property
    def capture_fps(self) -> float:
        """Frames per second the source delivered (counting frames dropped in between)."""
        items = list(self._captures)
        recent = [(t, i) for t, i in items if items and items[-1][0] - t <= 2.0]
        if len(recent) < 2:
            return 0.0
        (t0, i0), (t1, i1) = recent[0], recent[-1]
        return (i1 - i0) / (t1 - t0) if t1 > t0 and i1 > i0 else 0.0

    def take(self) -> Packet | None:
        """The newest finished packet (``None`` if none is waiting); frees the slot."""
        with self._slot_lock:
            packet, self._slot = self._slot, None
            self._pending = False
        return packet

    # -- worker thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        _lower_priority()
        try:
            self._build_engine()
            while not self._stop.is_set():
                self._drain_commands()
                if self._stop.is_set():
                    break
                if self.engine is None or self._capture is None or self._paused or self._ended:
                    self._wake.wait(0.1)
                    self._wake.clear()
                    continue
                self._next_frame()
        except Exception as exc:  # never die silently: tell the window
            self.error.emit(f"pipeline stopped: {type(exc).__name__}: {exc}")
        finally:
            self._finish_recording()
            self._close_source()

    def _build_engine(self) -> None:
        self.busy.emit(f"loading {self._engine_config.model}…")
        # A remembered layer may not exist in a remembered model: then its default layer, then the
        # library's defaults, so the app always opens.
        attempts = [self._engine_config, replace(self._engine_config, layer=None), EngineConfig(weights="none")]
        for i, config in enumerate(attempts):
            try:
                self.engine = Engine(config, fallback_untrained=True)
                break
            except EigenCamError as exc:
                if i == 0:
                    self.error.emit(str(exc))
            except Exception as exc:  # pragma: no cover - e.g. out of memory while building
                self.error.emit(f"cannot build {config.model}: {type(exc).__name__}: {exc}")
        self.busy.emit("")
        if self.engine is not None:
            self._announce_engine()

    def _announce_engine(self) -> None:
        e = self.engine
        assert e is not None
        self.engine_changed.emit(
            EngineStatus(
                config=e.config,
                layer=e.layer,
                device=str(e.device),
                dtype=str(e.dtype).replace("torch.", ""),
                trained=bool(e.loaded.trained),
                warning=e.warning,
            )
        )
        key = (e.config.model, e.loaded.weights)
        layers = self._layers_cache.get(key)
        if layers is None:
            from eigencam_live.models import feature_layers

            try:
                layers = feature_layers(e.loaded)
            except Exception as exc:
                self.error.emit(f"cannot list the layers of {e.config.model}: {exc}")
                layers = [(e.layer, ())]
            self._layers_cache[key] = layers
        self.layers_ready.emit(e.config.model, list(layers))

    def _drain_commands(self) -> None:
        reprocess = False
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            kind, arg = command[0], command[1] if len(command) > 1 else None
            try:
                if kind == "source":
                    self._open(arg)
                elif kind == "engine":
                    reprocess |= self._reconfigure(arg)
                elif kind == "render":
                    self._render = arg
                    reprocess = True
                elif kind == "pause":
                    self._paused = arg
                    self._pace_anchor = None
                    self.paused_changed.emit(arg)
                elif kind == "step":
                    self._paused = True
                    self._step(arg)
                    reprocess = False
                elif kind == "seek":
                    self._seek(arg)
                    reprocess = False
                elif kind == "cameras":
                    from eigencam_live.sources import list_cameras

                    self.cameras_found.emit(list_cameras())
                elif kind == "record":
                    if arg is None:
                        self._finish_recording()
                    else:
                        self._begin_recording(arg)
            except EigenCamError as exc:
                self.error.emit(str(exc))
            except Exception as exc:
                self.error.emit(f"{type(exc).__name__}: {exc}")
        # While paused (or at the end of a file) show the effect of a new setting on the same frame.
        if reprocess and (self._paused or self._ended) and self._last_frame is not None:
            self._process(self._last_frame, record=False)

    def _reconfigure(self, changes: dict) -> bool:
        if self.engine is None:
            self._engine_config = EngineConfig(**{**self._engine_config.__dict__, **changes})
            return False
        old = self.engine.config
        slow = "model" in changes or "weights" in changes
        if slow:
            self.busy.emit(f"loading {changes.get('model', old.model)}…")
        try:
            self.engine.reconfigure(**changes)
        except Exception:
            self._announce_engine()  # the window resyncs its controls to what is really in use
            raise
        finally:
            if slow:
                self.busy.emit("")
        self._announce_engine()
        if self._last_frame is not None:
            # A setting may be valid alone yet fail on real frames (a layer whose output is a
            # vector, a component beyond the map's rank): find out now, and go back.
            try:
                self.engine.process(self._last_frame.image)
            except EigenCamError as exc:
                self.engine.reconfigure(**{k: getattr(old, k) for k in changes})
                self._announce_engine()
                raise type(exc)(f"{exc}; back to layer {self.engine.layer}" if "layer" in changes
                                else f"{exc}; setting not applied") from exc
        return True

    def _open(self, spec: str | int) -> None:
        from eigencam_live.sources import Capture, open_source

        self._finish_recording()
        source = open_source(spec, demo_size=self.demo_size, demo_fps=self.demo_fps, realtime=True)
        self._close_source()
        self._capture = Capture(source).start()
        self._info = source.info
        self._ended = False
        self._last_frame = None
        self._pace_anchor = None
        self.source_fps = float(source.info.fps or 0.0)
        self._captures.clear()
        self.process_rate.stamps.clear()
        if self.engine is not None:
            self.engine.reset()
        self.source_opened.emit(source.info)
        if self._paused:  # show the first frame of the new source even when paused
            self._step(1)

    def _close_source(self) -> None:
        if self._capture is not None:
            cap, self._capture = self._capture, None
            try:
                cap.stop(timeout=1.0)
            except Exception as exc:
                self.error.emit(f"closing the source: {exc}")

    def _read(self, timeout: float) -> Any | None:
        """Next frame, ``None`` when nothing arrived yet; marks the end of a file.

        Live sources: the newest frame (older ones are dropped and counted by the capture).
        """
        assert self._capture is not None
        try:
            if self._info.live:
                frame = self._capture.read_latest(timeout=timeout)
            else:
                frame = self._capture.read(timeout=timeout)
        except TimeoutError:
            return None
        except EigenCamError as exc:
            self.error.emit(str(exc))
            self._close_source()
            return None
        if frame is None:
            self._ended = True
            self.source_ended.emit()
            return None
        return frame

    def _next_frame(self) -> None:
        frame = self._read(timeout=0.1)
        if frame is None:
            return
        if not self._info.live:
            self._pace(frame)
        self._process(frame, record=True)

    def _pace(self, frame: Any) -> None:
        """Play files at their own rate (the capture reads them as fast as it can)."""
        now = time.monotonic()
        anchor = self._pace_anchor
        if anchor is None or frame.pts < anchor[1] or now - (anchor[0] + frame.pts - anchor[1]) > 0.25:
            # First frame, a seek, or we fell behind (slow model): restart the clock here.
            self._pace_anchor = (now, float(frame.pts))
            return
        due = anchor[0] + float(frame.pts) - anchor[1]
        if due > now:
            self._stop.wait(min(due - now, 1.0))

    def _step(self, delta: int) -> None:
        if self._capture is None:
            return
        if delta < 0:
            if self._last_frame is None or not getattr(self._info, "seekable", False) or self._info.live:
                return
            self._seek(max(0, self._last_frame.index + delta))
            return
        self._process_next(record=True)

    def _process_next(self, *, record: bool) -> None:
        """Wait up to 2 s (stoppable) for the next frame and process it; nothing at the end."""
        deadline = time.monotonic() + 2.0
        while not self._stop.is_set() and time.monotonic() < deadline and self._capture is not None:
            frame = self._read(timeout=0.1)
            if frame is not None:
                self._process(frame, record=record)
                return
            if self._ended:
                return

    def _seek(self, index: int) -> None:
        if self._capture is None or not getattr(self._info, "seekable", False):
            return
        self._capture.seek(index)
        self._ended = False
        self._pace_anchor = None
        if self.engine is not None:
            self.engine.reset()
        if self._paused:
            self._process_next(record=False)

    def _process(self, frame: Any, *, record: bool) -> None:
        engine = self.engine
        if engine is None:
            return
        started = time.monotonic()
        t0 = time.perf_counter()
        try:
            result = engine.process(frame.image)[0]
        except EigenCamError as exc:
            self._report_once(str(exc))
            self._last_frame = frame
            return
        except (RuntimeError, MemoryError) as exc:
            # torch.OutOfMemoryError is a RuntimeError; so are odd shape errors of exotic layers.
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "out of memory" in msg.lower() or isinstance(exc, MemoryError):
                msg = f"out of memory: {msg}. Try a smaller input resolution or another model."
            self._report_once(msg)
            self._last_frame = frame
            return
        cfg = self._render
        image = render(frame.image, result.heatmap, cfg.view, cfg.alpha, cfg.colormap)
        t1 = time.perf_counter()
        now = time.monotonic()
        if frame is not self._last_frame:
            self._captures.append((frame.captured, frame.index))
        self.process_rate.tick(now)
        self.frames_processed += 1
        self.process_ms = (t1 - t0) * 1000.0
        self._last_frame = frame
        self._last_result = result
        if self._capture is not None:
            self.dropped = int(getattr(self._capture, "dropped", 0))
        if record and self._sink is not None:
            self._write(image, frame)
        packet = Packet(image=image, frame=frame, result=result, render=cfg, process_ms=self.process_ms, done=now,
                        started=started)
        with self._slot_lock:
            self._slot = packet
            notify = not self._pending
            self._pending = True
        if notify:
            self.frame_ready.emit()

    def _report_once(self, message: str) -> None:
        """Emit an error, but the same one at most every 3 s (a failing frame repeats each frame)."""
        now = time.monotonic()
        if message != self._last_report[0] or now - self._last_report[1] > 3.0:
            self._last_report = (message, now)
            self.error.emit(message)

    # -- recording -------------------------------------------------------------------------------
    def _begin_recording(self, path: str) -> None:
        self._finish_recording()
        self._sink_path = path
        self._sink = "pending"  # opened on the first frame: its size is the shown image's size
        self._record_t0 = None
        self.recording_changed.emit(True, path)

    def _write(self, image: np.ndarray, frame: Any) -> None:
        from eigencam_live.sink import VideoSink

        if self._sink == "pending":
            h, w = image.shape[:2]
            fps = self.source_fps or 30.0
            try:
                self._sink = VideoSink(self._sink_path, width=w - w % 2, height=h - h % 2, fps=fps, overwrite=True)
            except Exception as exc:
                self._sink = None
                self.recording_changed.emit(False, self._sink_path)
                self.error.emit(f"cannot record to {self._sink_path}: {exc}")
                return
            self._record_size = (w - w % 2, h - h % 2)
            self._record_t0 = frame.pts
        w, h = self._record_size
        if image.shape[1] != w or image.shape[0] != h:
            image = _letterbox(image, w, h)
        pts = max(0.0, float(frame.pts) - float(self._record_t0 or 0.0))
        if pts <= getattr(self, "_last_pts", -1.0):
            pts = self._last_pts + 1e-3
        self._last_pts = pts
        try:
            self._sink.write(image, pts)
        except Exception as exc:
            self.error.emit(f"recording failed: {exc}")
            self._finish_recording()

    def _finish_recording(self) -> None:
        sink, self._sink = self._sink, None
        self._last_pts = -1.0
        if sink is None:
            return
        path = getattr(self, "_sink_path", "")
        if sink != "pending":
            try:
                sink.close()
            except Exception as exc:
                self.error.emit(f"finishing the recording {path}: {exc}")
        self.recording_changed.emit(False, path)


def _lower_priority(step: int | None = None) -> None:
    """Give this thread a lower CPU priority than the GUI thread (Linux: threads have their own
    nice value), so that on a busy machine the model loses time, not the window. No-op elsewhere."""
    import os

    step = WORKER_NICE if step is None else step
    if step <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + step)
    except (OSError, AttributeError):
        pass


def _letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fit ``image`` into ``width x height`` keeping its aspect, black bars around."""
    import cv2

    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    out[y : y + nh, x : x + nw] = small
    return out
