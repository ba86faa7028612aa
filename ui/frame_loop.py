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
from pathlib import Path
from typing import Any, Protocol

import torch

from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import ConfigError, EigenCamError
from eigencam_live.models import model_kind
from eigencam_live.render import RenderConfig
from eigencam_live.video import STREAM_SCHEMES, Frame, list_cameras, shown_url

from . import commands as cmd
from .compare import component_tiles, layer_tiles
from .engine_status import EngineStatus, build_engine, layer_list
from .handoff import NewestOnly, Packet
from .loop_recording import LoopRecording
from .loop_settings import WORK, LoopSettings
from .playback import Playback
from .rates import RateMeter
from .recorder import Recorder, stamp_timecode
from .shown import ShownFrames

__all__ = ["WORK", "FrameLoop", "Outlets"]


class Signal(Protocol):
    def emit(self, *args: Any) -> None: ...


class Outlets(Protocol):
    """What the loop tells the GUI (:class:`~ui.worker.Pipeline`'s signals, documented there)."""

    frame_ready: Signal
    error: Signal
    engine_changed: Signal
    layers_ready: Signal
    source_opened: Signal
    source_failed: Signal
    source_ended: Signal
    recording_changed: Signal
    busy: Signal
    cameras_found: Signal
    paused_changed: Signal
    compare_ready: Signal
    fatal: Signal



class FrameLoop(LoopRecording, LoopSettings):
    """Owns the engine, the :class:`Playback` and the :class:`Recorder`; :meth:`run` is the thread body.

    Args:
        engine_config: settings of the engine built when :meth:`run` starts.
        render_config: how pictures are drawn.
        out: where signals go.
        demo_size, demo_fps: the synthetic scene's size and rate ("scene").
        required: what the command line named: ``"source"`` and the names of the engine settings
            typed there. If those settings cannot be had (the engine fails with them over the
            defaults too), or that source cannot be opened before another is chosen, ``fatal`` says
            why and the loop ends, instead of falling back to the defaults or the demo clip (which
            remembered settings get: they may be stale).
    """

    def __init__(self, engine_config: EngineConfig, render_config: RenderConfig, out: Outlets, *,
                 demo_size: tuple[int, int] = (640, 480), demo_fps: float = 30.0,
                 required: frozenset[str] = frozenset()) -> None:
        self.out = out
        self._required = set(required)
        self._sources_asked = 0  # OpenSource commands put: only the first (the command line's) is required
        self._sources_taken = 0  # ... and taken in turn: the source open now is the one of this number
        self._engine_config = engine_config
        self._render = render_config
        self.commands: queue.SimpleQueue[cmd.Command] = queue.SimpleQueue()
        self.wake = threading.Event()
        self.stop_event = threading.Event()
        self.mailbox = NewestOnly()
        self.handlers = {
            cmd.OpenSource: self._open, cmd.Reconfigure: self._reconfigure, cmd.SetRender: self._set_render,
            cmd.SetPaused: self._window_pause, cmd.Step: self._step, cmd.Seek: self._seek,
            cmd.StartRecording: self._start_recording, cmd.StopRecording: lambda _c: self._stop_recording(),
            cmd.FindCameras: self._find_cameras,
            cmd.Compare: self._compare,
            cmd.SetTimecode: self._set_timecode,
        }
        self.engine: Engine | None = None
        # The network's threads: what the app set torch's count to before the window (--threads,
        # or every core but one); the engine then gives them to whatever runs the network.
        self._threads = torch.get_num_threads()
        self.playback = Playback(demo_size, demo_fps)
        self.recorder = Recorder()
        # Held while a frame is written or the file finished: the GUI thread finishes the recording
        # itself when the worker does not stop in time (stuck loading a model), never at the same time.
        self._recorder_lock = threading.Lock()
        self._paused = False
        self._pauses = 0  # the window's pauses taken, stamped on each packet (Packet.pauses)
        self._paused_by_source = False  # the source's own pause (a folder's first still, a file's end), not the user's
        self._timecode = False
        self._redraw = False  # a setting changed since the frame on screen was processed
        self.shown = ShownFrames()  # the frame the loop is on; a pause lands on the one on screen
        self._last_packet: Packet | None = None
        self._last_report: tuple[str, float] = ("", 0.0)
        self._unprepared: object = None  # the engine settings whose preparing failed (not said again each frame)
        self._loaded = False  # a model was just loaded: its first frame is still to go through
        self._layers_cache: dict[tuple, list] = {}
        self._layers_size: tuple[int, int] | None = None  # the input size the layer list was made for
        # Read by the GUI thread (plain numbers: a torn read is harmless).
        self.capture_rate = RateMeter()
        self.process_rate = RateMeter()
        self._looped = 0  # frames of a looped file's passes before this one (the capture rate counts on)
        self.process_ms = 0.0
        self.dropped = 0
        self._dropped_offset = 0  # frames the live capture dropped while paused (not the model's fault)
        self._warned: str | None = None  # the source's warning, once said
        self._backend_warned: str | None = None  # the backend's, once said
        self._stretch_said: set[tuple] = set()  # (model, frame size) whose stretch to a fixed input was said
        self._backend_running: str | None = None  # what ran the last frame (torch where it fell back)
        self._noted: str | None = None  # the model's note (it runs at one size only), once said
        self._dropped_at_pause = 0
        self.frames_processed = 0

    @property
    def sources_asked(self) -> int:
        """How many sources were asked for (:class:`~ui.commands.OpenSource` put): a
        ``source_ended`` of a lower number is of a source that a newer choice replaces."""
        return self._sources_asked

    def put(self, command: cmd.Command) -> None:
        """Queue ``command`` (any thread); it applies before the next frame."""
        if type(command) not in self.handlers:
            raise TypeError(f"not a pipeline command: {command!r}")
        if isinstance(command, cmd.OpenSource):
            self._sources_asked += 1
            self.playback.interrupt_opening()  # a newer choice ends a stream still being opened
        self.commands.put(command)
        self.wake.set()

    def run(self) -> None:
        """The worker thread's body: until :attr:`stop_event` is set."""
        try:
            self._open_first()
            if self.stop_event.is_set():  # the command line's source cannot be had (said), or the window closed
                return
            dropped_before = self.playback.dropped
            if self.engine is None and not self._build_engine(typed=frozenset(self._required - {"source"})):
                return
            # a camera's frames while the model loaded were not the model's to keep up with
            self._dropped_offset += max(0, self.playback.dropped - dropped_before)
            if self._paused and self.playback.is_open and self.shown.last is None:  # a folder's first still
                self._process_next(record=True)
            while not self.stop_event.is_set():
                self._drain_commands()
                if self.stop_event.is_set():
                    break
                if self.engine is None or not self.playback.is_open or self._paused or self._ended:
                    self.wake.wait(0.1)
                    self.wake.clear()
                    continue
                self._play(timeout=0.1)
        except Exception as exc:  # never die silently: tell the window
            self.out.error.emit(f"pipeline stopped: {type(exc).__name__}: {exc}")
        finally:
            self._stop_recording()
            self._close_source()

    def _open_first(self) -> None:
        """The source the window starts on (its command, put before the thread started), opened
        before the model loads: its line in the source box and its size (the layers' shapes) are
        known during the load's seconds, and a source the command line names that cannot be had is
        said without waiting for it (a trial: "Opening car-detection.mp4…" for a detector's 15 s)."""
        try:
            first = self.commands.get_nowait()
        except queue.Empty:
            return
        self._handle(first)  # (an OpenSource, put by Pipeline.start; anything else as the loop would)

    def _build_engine(self, typed: frozenset[str] = frozenset()) -> bool:
        """The engine for the settings (:func:`build_engine`: their fallbacks, said); returns whether
        the loop goes on (not where the command line's settings cannot be had)."""
        self.engine = build_engine(self._engine_config, self.out.busy.emit, self.out.error.emit, typed=typed,
                                   fatal=self.out.fatal.emit)
        if self.engine is None:
            if typed:
                return False
            self.out.layers_ready.emit(self._engine_config.model, [])  # the layer box: "no network"
            return True
        self.engine.threads = self._threads
        self._loaded = True
        self._announce_engine()
        return True

    def _play(self, timeout: float) -> Frame | None:
        """One frame of play: one a pause went back over, else the source's next (waited for up
        to ``timeout`` s, then held to its time); ``None`` when none came."""
        waited = self.shown.waiting  # due now, not when it was captured
        frame, record, drawn = self.shown.take() if waited else (self._read(timeout), True, None)
        if frame is None:
            return None
        self.playback.pace(frame, self.stop_event.wait)
        # Counted in play only, never a step or a seek (those jump the index).
        origin = time.monotonic() if waited else self._origin(frame)
        info = self.playback.info  # a live frame's timestamp: a burst on connecting is not a rate
        self.capture_rate.tick(self._looped + frame.index, t=origin,
                               stamp=frame.pts if info is not None and info.live and not waited else None)
        self._show(frame, drawn, record=record, origin=origin, played=True)
        if waited and self._ended:  # the source's last frame, which waited: its end is said again
            self.out.source_ended.emit(self._sources_taken)
        return frame

    def _drain_commands(self) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            self._handle(command)
        # While paused (or at the end of a file) show the effect of a new setting on the same frame.
        if self._redraw and (self._paused or self.playback.ended) and self.shown.last is not None:
            self._process(self.shown.last, record=False)

    def _handle(self, command: cmd.Command) -> None:
        try:
            self.handlers[type(command)](command)
        except EigenCamError as exc:
            self.out.error.emit(str(exc))
        except Exception as exc:
            self.out.error.emit(f"{type(exc).__name__}: {exc}")

    def _set_timecode(self, command: cmd.SetTimecode) -> None:
        self._timecode = command.on
        self._redrawn()

    def _set_render(self, command: cmd.SetRender) -> None:
        self._render = command.config
        self._redrawn()

    def _redrawn(self) -> None:
        """A setting changed: the frame on screen is drawn again while paused, and so are the
        frames a pause went back over, as they come."""
        self.shown.outdated()
        self._redraw = True

    @property
    def _ended(self) -> bool:
        """The source ended, and no frame waits to be shown (see :class:`ShownFrames`)."""
        return self.playback.ended and not self.shown.waiting

    def _window_pause(self, command: cmd.SetPaused) -> None:
        """The window's pause or play, counted (:attr:`Packet.pauses`); the source's own (a
        folder's first still, a new source after a file's end) go straight to :meth:`_set_paused`."""
        self._pauses += command.paused
        self._set_paused(command)

    def _set_paused(self, command: cmd.SetPaused) -> None:
        if command.paused and not self._paused and command.shown is not None:
            self._land_on(command.shown)
        # a pause at the end of a file is the window's answer to that end; any other is the user's
        # (who may then step to the end: still the user's, carried over to the next source)
        self._paused_by_source = command.paused and self._ended
        if command.paused and not self._paused:
            self._dropped_at_pause = self.playback.dropped
        elif self._paused and not command.paused:
            self._dropped_offset += max(0, self.playback.dropped - self._dropped_at_pause)
        self._paused = command.paused
        self.playback.hold(command.paused)
        if not command.paused and self._ended and self.playback.seekable:
            self._seek(cmd.Seek(0))  # played at the end: from the beginning, as a player does
        self.playback.restart_clock()
        self._clear_rates()  # a rate across a pause means nothing
        self.out.paused_changed.emit(command.paused)

    def _land_on(self, shown: Frame) -> None:
        """The pause goes back to ``shown``, on screen (:meth:`ShownFrames.land_on`); where the
        window was further behind, the newest frame is shown again, as paused on."""
        info = self.playback.info  # a camera's next frame is its newest: the ones in flight are stale
        if self.shown.land_on(shown, keep=info is not None and (not info.live or self.playback.waits)):
            return
        if self._last_packet is not None and self._last_packet.frame is self.shown.last:
            if self.mailbox.put(replace(self._last_packet, played=False)):
                self.out.frame_ready.emit()

    def _clear_rates(self) -> None:
        self.capture_rate.clear()
        self.process_rate.clear()
        self._looped = 0  # frames of the passes before this one, for the capture rate's count

    def _origin(self, frame: Frame) -> float:
        """When ``frame`` was due on screen: its capture time for a live source; for a file, now
        (just paced: it waited, decoded ahead, only for its own time to come)."""
        info = self.playback.info
        return frame.captured if info is None or info.live else time.monotonic()

    def _open(self, command: cmd.OpenSource) -> None:
        self._sources_taken += 1
        self._stop_recording()
        remote = isinstance(command.spec, str) and command.spec.strip().lower().startswith(STREAM_SCHEMES)
        dropped_before = self.playback.dropped
        # the last source's own pause (a folder's stills, the end reached) is not carried to the next
        source_paused = self._paused and self._paused_by_source
        if remote:  # seconds, where a server is slow or silent: said over the picture meanwhile
            self.out.busy.emit(f"opening {shown_url(command.spec)}…")
        try:
            info = self.playback.open(command.spec)
        except EigenCamError as exc:
            if self.stop_event.is_set():  # the window closed while it opened (its opening was cancelled): no error
                return
            if "source" in self._required and self._sources_asked == 1:  # the command line's, nothing chosen since
                self.out.fatal.emit(str(exc))
                self.stop_event.set()
                return
            self.out.source_failed.emit(command.spec, str(exc))
            if self.playback.is_open:  # the previous source plays on; what it sent while this one
                self._dropped_offset += max(0, self.playback.dropped - dropped_before)  # opened was never due
                if self.playback.ended:  # its end, let go by the window for this choice, is said again
                    self.out.source_ended.emit(self._sources_taken)
                return
            # Nothing to show otherwise (the first source of the run): the demo clip, always there.
            command = cmd.OpenSource("demo")
            info = self.playback.open("demo")
        finally:
            if remote:
                self.out.busy.emit("")
        self._required.discard("source")  # opened: later choices fall back as usual
        self.shown.last = self._last_packet = None
        self.shown.forget()
        self._clear_rates()
        self.dropped = self._dropped_offset = self._dropped_at_pause = 0  # (the last source's drops are not this one's)
        if self.engine is not None:
            self.engine.reset()
        self._warned = None
        self.out.source_opened.emit(command.spec, info)
        if info.kind == "folder" and (source_paused or not self._paused):  # stills: one at a time (→), until
            if not self._paused:  # played (Space)
                self._set_paused(cmd.SetPaused(True))
            self._paused_by_source = True
        elif source_paused:  # a user's pause stays
            self._set_paused(cmd.SetPaused(False))
        if self._paused and self.engine is not None:  # show the first frame of the new source even when
            self._process_next(record=True)  # paused (before the model has loaded: once it has, see run)

    def _close_source(self) -> None:
        self.shown.forget()  # (the frame on screen stays, for a redraw)
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
        if frame is not None and frame.note:  # said as its frame shows (a folder's unreadable image before it)
            self.out.source_warning.emit(frame.note)
        warning = self.playback.warning
        if warning and warning != self._warned:  # said once, when it happens
            self._warned = warning
            self.out.source_warning.emit(warning)
        if frame is None and self.playback.ended:  # with the number of the choice it ended (see sources_asked)
            self.out.source_ended.emit(self._sources_taken)
        return frame

    def _step(self, command: cmd.Step) -> None:
        if not self._paused:
            self._set_paused(cmd.SetPaused(True))
        self._clear_rates()
        if command.delta > 0:
            self._process_next(record=True)
        elif self.shown.last is not None:  # back: recorded as a step forward is (a GUI trial: left out,
            # the frame after it came twice in the file); the recorder cuts the jump out. At the first
            # frame it stays there: shown again, not recorded again (a review)
            target = max(0, self.shown.last.index + command.delta)
            self._seek(cmd.Seek(target), record=target != self.shown.last.index)

    def _seek(self, command: cmd.Seek, *, record: bool = False) -> None:
        """Go to a frame; while paused, show it (``record``: and record it, as a step's frame; a
        seek's is left out of a recording, which goes on from the frames played after it)."""
        if not self.playback.seek(command.index):
            return
        self.shown.forget()
        if command.loop and self.shown.last is not None:  # the same playing, again: rates go on
            self._looped += self.shown.last.index + 1
        else:
            self._clear_rates()
        if self.engine is not None:
            self.engine.reset()
        if self._paused:
            self._process_next(record=record)

    def _process_next(self, *, record: bool) -> None:
        """Wait up to 2 s (stoppable) for the next frame and process it; nothing at the end."""
        if self.shown.waiting:  # a frame a pause went back over comes first
            frame, again, drawn = self.shown.take()
            self._show(frame, drawn, record=record and again)
            return
        self.playback.step()  # a paused source that waits (the demo clip): its next frame
        deadline = time.monotonic() + 2.0
        while not self.stop_event.is_set() and time.monotonic() < deadline and self.playback.is_open:
            frame = self._read(timeout=0.1)
            if frame is not None:
                self._process(frame, record=record)
                return
            if self.playback.ended:
                return

    def _process(self, frame: Frame, *, record: bool, origin: float | None = None, played: bool = False) -> None:
        """Map and draw ``frame``, record it, hand it to the GUI; ``origin``: when it was due on
        screen (default: now), the start of its latency; ``played``: in play (see :attr:`Packet.played`)."""
        engine = self.engine
        if engine is None:
            return
        self._redraw = False
        started = time.monotonic()
        t0 = time.perf_counter()
        hw = frame.image.shape[:2]
        preparing = engine.preparing(hw)
        dropped_before = self.playback.dropped
        if preparing and self._unprepared == (engine.config, engine.input_size(hw)):
            preparing = False  # it failed on the last frame: each new try is not a new wait to veil
        elif preparing and engine.backend.name == "torch":  # its traced copy for this size (bf16: up to 7 s)
            self.out.busy.emit(f"preparing {engine.config.model} for torch (a traced copy for this input, layer and "
                               "precision)…")
        elif preparing:  # an export (once, then cached), or an ONNX file's session for its layer
            exported = model_kind(engine.config.model) != "onnx"
            name = engine.config.model if exported else Path(engine.config.model).name
            if exported and not engine.backend.preparing:  # exported: checked at this new size (a trial: 7-16 s
                h, w = engine.input_size(hw)  # of a still picture, and nothing said why)
                self.out.busy.emit(f"checking {name} on {engine.backend.name} against torch at {w}x{h} (once for "
                                   "this input size)…")
            elif exported and getattr(engine.backend, "exported_before", False):  # (a trial: "once" said again)
                self.out.busy.emit(f"preparing {name} for {engine.backend.name} from its cached export…")
            else:
                self.out.busy.emit(f"preparing {name} for {engine.backend.name}{' (once, cached)' if exported else ''}…")
        first, self._loaded = self._loaded and not preparing, False
        if first:  # loaded: "loading" no longer (a trial: "Loading fasterrcnn… 20 s" was its first frame's 16 s)
            self.out.busy.emit(f"running {Path(engine.config.model).name} on its first frame…")
        try:
            # The engine draws the picture too (on the GPU when it runs there): one route.
            result = engine.process(frame.image, render=self._render)[0]
        except EigenCamError as exc:  # the network's own failures among them (errors.NetworkError)
            if isinstance(exc, ConfigError) and exc.field == "component" and self._beyond_rank(engine, exc):
                return self._process(frame, record=record, origin=origin, played=played)  # with component 1
            self._report_once(str(exc))
            self.shown.now_at(frame, played)
            return
        except Exception as exc:  # anything else on this frame: said, and the loop goes on
            # torch.OutOfMemoryError is a RuntimeError; so are odd shape errors of exotic layers.
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "out of memory" in msg.lower() or isinstance(exc, MemoryError):
                msg = f"out of memory: {msg}. Try a smaller input resolution or another model."
            else:
                msg = f"processing the frame failed: {type(exc).__name__}: {msg}"
            self._report_once(msg)
            self.shown.now_at(frame, played)
            return
        finally:
            if preparing or first:
                self.out.busy.emit("")
                self._unprepared = (engine.config, engine.input_size(hw)) if engine.preparing(hw) else None
        if preparing:
            self._dropped_offset += max(0, self.playback.dropped - dropped_before)  # not the running model's
        warning, running = engine.backend.warning, engine.backend.running
        moved = self._backend_running is not None and running != self._backend_running
        if preparing or moved or warning != self._backend_warned:
            # what runs it is known now, or changed (a size it fell back to torch at, or back again);
            # its warning is shown while it holds (EngineStatus.backend_warning)
            self.out.engine_changed.emit(EngineStatus.of(engine))
        self._backend_warned, self._backend_running = warning, running
        self._required.discard("component")  # had on a frame: a later source's size falls back as usual
        self._say_stretch(engine, frame)
        now = time.monotonic()
        self.process_rate.tick(t=now)
        self.frames_processed += 1
        self.process_ms = (time.perf_counter() - t0) * 1000.0
        self.shown.now_at(frame, played)
        if not self._paused:
            self.dropped = max(0, self.playback.dropped - self._dropped_offset)
        picture, seconds = result.picture, frame.pts - self.playback.origin
        if self._timecode:  # frame numbers count from 1, as the window does
            picture = stamp_timecode(picture, frame.index + 1, seconds)
        self._deliver(Packet(picture, frame, result, self.process_ms, done=now, started=started,
                             origin=started if origin is None else origin, seconds=seconds,
                             still=self.playback.image_name(frame.index), played=played, pauses=self._pauses),
                      record)
        if engine.input_size() != self._layers_size:  # a new frame size: the layers' shapes change (listed
            self._layers_size = engine.input_size()  # after the frame is on its way: a forward pass, seconds)
            self.out.layers_ready.emit(engine.config.model, layer_list(engine, self._layers_cache, self.out.error.emit))

    def _show(self, frame: Frame, drawn: Packet | None, *, record: bool, origin: float | None = None,
              played: bool = False) -> None:
        """A frame from :meth:`ShownFrames.take`: shown as ``drawn`` where it was drawn already, else processed."""
        if drawn is None:
            self._process(frame, record=record, origin=origin, played=played)
        else:
            self._show_again(drawn, record=record, origin=origin, played=played)

    def _show_again(self, packet: Packet, *, record: bool, origin: float | None, played: bool) -> None:
        """A frame a pause went back over, drawn already with the settings in use: shown (and
        recorded) as it was, not drawn again through the engine's video state, which is past it."""
        self.shown.now_at(packet.frame, played)
        now = time.monotonic()
        self._deliver(replace(packet, done=now, started=now, origin=now if origin is None else origin, played=played,
                              pauses=self._pauses), record)

    def _deliver(self, packet: Packet, record: bool) -> None:
        """Record the picture of the frame just processed (where ``record``) and hand it to the window."""
        if record and self.recorder.active:
            self._record(packet)
        self._last_packet = packet
        self.shown.drawn(packet)
        if self.mailbox.put(packet):
            self.out.frame_ready.emit()

    def _report_once(self, message: str) -> None:
        """Emit an error, but the same one at most every 3 s (a failing frame repeats each frame), and
        end a veil waiting for a frame: none comes."""
        now = time.monotonic()
        if message != self._last_report[0] or now - self._last_report[1] > 3.0:
            self._last_report = (message, now)
            self.out.error.emit(message)
            self.out.busy.emit("")

    def _find_cameras(self, _command: cmd.FindCameras) -> None:
        cameras = list_cameras()  # (seconds where a camera does not answer)
        if not self.stop_event.is_set():  # closed meanwhile: nothing to tell, as after a layer listing
            self.out.cameras_found.emit(cameras)

    def _compare(self, command: cmd.Compare) -> None:
        """Say ``compare_ready([(component, picture, explained), ...])`` for the frame on screen,
        one picture per component (the engine's own, as drawn now); the component in use stays.
        With ``command.layers``: ``[(layer name, picture, explained), ...]``, the component in use
        at each layer (those that cannot give it are left out); the layer in use stays."""
        engine, frame = self.engine, self.shown.last
        if engine is None or frame is None:
            self.out.error.emit("nothing to compare: no frame is shown yet")
            self.out.compare_ready.emit([])  # the window's "Comparing…" ends
            return
        if command.layers:
            tiles, refused = layer_tiles(engine, frame.image, self._render, command.layers)
            if refused:
                self.out.error.emit("left out of the comparison: " + "; ".join(refused))
        else:
            tiles = component_tiles(engine, frame.image, self._render, command.count)
        # The tiles are the frame's own decomposition (no state carried from earlier frames): the
        # view is redrawn the same way, so that its map is the first tile's (the layer's in use).
        self._redraw = True
        if not self.stop_event.is_set():  # (closed meanwhile: nothing to tell, as after a layer listing)
            self.out.compare_ready.emit(tiles)
