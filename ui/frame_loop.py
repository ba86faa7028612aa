"""The app's worker loop: commands in, frames read, processed, recorded and handed to the GUI.

No Qt here: the loop runs in :class:`~ui.worker.Pipeline`'s thread and speaks only through the
``emit`` methods of the object it is given as ``out`` (the pipeline's signals), so it can be driven
and tested without a window.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import replace
from typing import Any, Protocol

from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import EigenCamError
from eigencam_live.render import RenderConfig
from eigencam_live.video import Frame, list_cameras

from . import commands as cmd
from .engine_status import EngineStatus, build_engine, layer_list
from .handoff import NewestOnly, Packet
from .playback import Playback
from .rates import RateMeter
from .recorder import Recorder

__all__ = ["FrameLoop", "Outlets"]


class Signal(Protocol):
    def emit(self, *args: Any) -> None: ...


class Outlets(Protocol):
    """What the loop tells the GUI (:class:`~ui.worker.Pipeline`'s signals, documented there)."""

    frame_ready: Signal
    error: Signal
    engine_changed: Signal
    layers_ready: Signal
    source_opened: Signal
    source_ended: Signal
    recording_changed: Signal
    busy: Signal
    cameras_found: Signal
    paused_changed: Signal


class FrameLoop:
    """Owns the engine, the :class:`Playback` and the :class:`Recorder`; :meth:`run` is the thread body.

    Args:
        engine_config: settings of the engine built when :meth:`run` starts.
        render_config: how pictures are drawn.
        out: where signals go.
        demo_size, demo_fps: the demo scene's size and rate.
    """

    def __init__(self, engine_config: EngineConfig, render_config: RenderConfig, out: Outlets, *,
                 demo_size: tuple[int, int] = (640, 480), demo_fps: float = 30.0) -> None:
        self.out = out
        self._engine_config = engine_config
        self._render = render_config
        self.commands: queue.SimpleQueue[cmd.Command] = queue.SimpleQueue()
        self.wake = threading.Event()
        self.stop_event = threading.Event()
        self.mailbox = NewestOnly()
        self.handlers = {
            cmd.OpenSource: self._open, cmd.Reconfigure: self._reconfigure, cmd.SetRender: self._set_render,
            cmd.SetPaused: self._set_paused, cmd.Step: self._step, cmd.Seek: self._seek,
            cmd.StartRecording: self._start_recording, cmd.StopRecording: lambda _c: self._stop_recording(),
            cmd.FindCameras: lambda _c: self.out.cameras_found.emit(list_cameras()),
        }
        self.engine: Engine | None = None
        self.playback = Playback(demo_size, demo_fps)
        self.recorder = Recorder()
        self._paused = False
        self._redraw = False  # a setting changed since the frame on screen was processed
        self._last_frame: Frame | None = None
        self._last_report: tuple[str, float] = ("", 0.0)
        self._layers_cache: dict[tuple[str, str], list] = {}
        # Read by the GUI thread (plain numbers: a torn read is harmless).
        self.capture_rate = RateMeter()
        self.process_rate = RateMeter()
        self.process_ms = 0.0
        self.dropped = 0
        self.frames_processed = 0

    def put(self, command: cmd.Command) -> None:
        """Queue ``command`` (any thread); it applies before the next frame."""
        if type(command) not in self.handlers:
            raise TypeError(f"not a pipeline command: {command!r}")
        self.commands.put(command)
        self.wake.set()

    def run(self) -> None:
        """The worker thread's body: until :attr:`stop_event` is set."""
        try:
            self.engine = build_engine(self._engine_config, self.out.busy.emit, self.out.error.emit)
            if self.engine is not None:
                self._announce_engine()
            while not self.stop_event.is_set():
                self._drain_commands()
                if self.stop_event.is_set():
                    break
                if self.engine is None or not self.playback.is_open or self._paused or self.playback.ended:
                    self.wake.wait(0.1)
                    self.wake.clear()
                    continue
                frame = self._read(timeout=0.1)
                if frame is not None:
                    self.playback.pace(frame, self.stop_event.wait)
                    self._process(frame, record=True)
        except Exception as exc:  # never die silently: tell the window
            self.out.error.emit(f"pipeline stopped: {type(exc).__name__}: {exc}")
        finally:
            self._stop_recording()
            self._close_source()

    def _announce_engine(self) -> None:
        e = self.engine
        assert e is not None
        self.out.engine_changed.emit(EngineStatus.of(e))
        self.out.layers_ready.emit(e.config.model, layer_list(e, self._layers_cache, self.out.error.emit))

    def _drain_commands(self) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            try:
                self.handlers[type(command)](command)
            except EigenCamError as exc:
                self.out.error.emit(str(exc))
            except Exception as exc:
                self.out.error.emit(f"{type(exc).__name__}: {exc}")
        # While paused (or at the end of a file) show the effect of a new setting on the same frame.
        if self._redraw and (self._paused or self.playback.ended) and self._last_frame is not None:
            self._process(self._last_frame, record=False)

    def _reconfigure(self, command: cmd.Reconfigure) -> None:
        changes = command.changes
        if self.engine is None:
            self._engine_config = replace(self._engine_config, **changes)
            return
        slow = "model" in changes or "weights" in changes
        if slow:
            self.out.busy.emit(f"loading {changes.get('model', self.engine.config.model)}…")
        try:
            # The engine refuses, changing nothing, a layer or component the model's shapes cannot
            # give a map for: no trial frame here.
            self.engine.reconfigure(**changes)
        except EigenCamError as exc:
            kept = f"back to layer {self.engine.layer}" if "layer" in changes else "setting not applied"
            self.out.error.emit(f"{exc}; {kept}")
            return
        finally:
            if slow:
                self.out.busy.emit("")
            self._announce_engine()  # the window syncs its controls to what is really in use
        self._redraw = True

    def _set_render(self, command: cmd.SetRender) -> None:
        self._render = command.config
        self._redraw = True

    def _set_paused(self, command: cmd.SetPaused) -> None:
        self._paused = command.paused
        self.playback.restart_clock()
        self.out.paused_changed.emit(command.paused)

    def _open(self, command: cmd.OpenSource) -> None:
        self._stop_recording()
        info = self.playback.open(command.spec)
        self._last_frame = None
        self.capture_rate.clear()
        self.process_rate.clear()
        if self.engine is not None:
            self.engine.reset()
        self.out.source_opened.emit(info)
        if self._paused:  # show the first frame of the new source even when paused
            self._process_next(record=True)

    def _close_source(self) -> None:
        try:
            self.playback.close()
        except Exception as exc:
            self.out.error.emit(f"closing the source: {exc}")

    def _read(self, timeout: float) -> Frame | None:
        """Next frame, ``None`` when nothing arrived yet; says when a file ended or a source failed."""
        try:
            frame = self.playback.read(timeout)
        except EigenCamError as exc:
            self.out.error.emit(str(exc))
            self._close_source()
            return None
        if frame is None and self.playback.ended:
            self.out.source_ended.emit()
        return frame

    def _step(self, command: cmd.Step) -> None:
        self._paused = True
        if command.delta > 0:
            self._process_next(record=True)
        elif self._last_frame is not None:
            self._seek(cmd.Seek(max(0, self._last_frame.index + command.delta)))

    def _seek(self, command: cmd.Seek) -> None:
        if not self.playback.seek(command.index):
            return
        if self.engine is not None:
            self.engine.reset()
        if self._paused:
            self._process_next(record=False)

    def _process_next(self, *, record: bool) -> None:
        """Wait up to 2 s (stoppable) for the next frame and process it; nothing at the end."""
        deadline = time.monotonic() + 2.0
        while not self.stop_event.is_set() and time.monotonic() < deadline and self.playback.is_open:
            frame = self._read(timeout=0.1)
            if frame is not None:
                self._process(frame, record=record)
                return
            if self.playback.ended:
                return

    def _process(self, frame: Frame, *, record: bool) -> None:
        engine = self.engine
        if engine is None:
            return
        self._redraw = False
        started = time.monotonic()
        t0 = time.perf_counter()
        preparing = engine.backend.preparing
        if preparing:
            self.out.busy.emit(f"preparing {engine.config.model} for {engine.backend.name} (once, cached)…")
        try:
            # The engine draws the picture too (on the GPU when it runs there): one route.
            result = engine.process(frame.image, render=self._render)[0]
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
        finally:
            if preparing:
                self.out.busy.emit("")
        if preparing:
            self.out.engine_changed.emit(EngineStatus.of(engine))  # what runs it is known now
            if engine.backend.warning:
                self.out.error.emit(engine.backend.warning)
        now = time.monotonic()
        if frame is not self._last_frame:
            self.capture_rate.tick(frame.index, t=frame.captured)
        self.process_rate.tick(t=now)
        self.frames_processed += 1
        self.process_ms = (time.perf_counter() - t0) * 1000.0
        self._last_frame = frame
        self.dropped = self.playback.dropped
        if record and self.recorder.active:
            try:
                self.recorder.write(result.picture, frame.pts)
            except EigenCamError as exc:
                self.out.error.emit(str(exc))
                self._stop_recording()
        packet = Packet(result.picture, frame, result, self.process_ms, done=now, started=started)
        if self.mailbox.put(packet):
            self.out.frame_ready.emit()

    def _report_once(self, message: str) -> None:
        """Emit an error, but the same one at most every 3 s (a failing frame repeats each frame)."""
        now = time.monotonic()
        if message != self._last_report[0] or now - self._last_report[1] > 3.0:
            self._last_report = (message, now)
            self.out.error.emit(message)

    # -- recording -------------------------------------------------------------------------------
    def _start_recording(self, command: cmd.StartRecording) -> None:
        self._stop_recording()
        self.recorder.start(command.path, fps=self.playback.fps or 30.0)
        self.out.recording_changed.emit(True, str(command.path))

    def _stop_recording(self) -> None:
        path = self.recorder.path
        if path is None:
            return
        try:
            self.recorder.stop()
        except Exception as exc:
            self.out.error.emit(f"finishing the recording {path}: {exc}")
        self.out.recording_changed.emit(False, str(path))
