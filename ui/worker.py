"""The pipeline worker: capture -> engine (map and picture) (-> recorder) off the GUI thread.

:class:`Pipeline` is the Qt face of a :class:`~ui.frame_loop.FrameLoop` that runs in one plain
Python thread and owns the engine, the source and the recorder. The GUI talks to it only through
typed messages (:mod:`ui.commands`) and hears back through Qt signals emitted from the worker thread
(queued to the GUI thread).

Frames reach the GUI newest-only (:class:`~ui.handoff.NewestOnly`): :attr:`Pipeline.frame_ready`
is emitted only when the GUI has taken the previous packet, so the event queue holds at most one
frame notification however slow the GUI is, and a slow model lowers the frame rate, never the
responsiveness.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PyQt5.QtCore import QObject, pyqtSignal

from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.render import RenderConfig
from eigencam_live.video import Frame

from . import commands as cmd
from .engine_status import EngineStatus
from .frame_loop import FrameLoop
from .handoff import Packet
from .rates import RateMeter

__all__ = ["EngineStatus", "Packet", "Pipeline"]


class Pipeline(QObject):
    """Drives source -> engine in a worker thread.

    Args:
        engine_config: initial engine settings.
        render_config: initial drawing settings.
        demo_size: ``(width, height)`` of the synthetic scene ("scene").
        demo_fps: frame rate of the synthetic scene.

    Signals (all emitted from the worker thread, delivered queued on the GUI thread):
        frame_ready: a new :class:`Packet` waits in :meth:`take`.
        error(str): a one-line message for the user; the pipeline keeps running.
        warning(str): the same for what runs otherwise than asked (ONNX Runtime fell back to torch
            at a size, the network is held to one size, a folder's image was skipped).
        setting_failed(str): a change of model or setting was refused, and why (the one in use
            stays); setting_applied(): a later one was applied.
        engine_changed(EngineStatus): the engine was (re)built or reconfigured.
        layers_ready(str, object): model name and its list of ``(name, kind, (C, h, w))`` feature layers.
        source_opened(object, object): the spec that opened (``"demo"`` when the first source of
            the run failed and the demo took its place) and its ``SourceInfo``.
        source_failed(object, str): a spec that could not be opened and why (the previous source,
            if any, plays on).
        source_ended(int): end of a file; the number of the choice that opened it (stale where
            below :attr:`sources_asked`: a newer source is on its way).
        recording_changed(bool, str): recording on/off and the file path (off with ``""``: nothing
            was recorded, no file).
        cameras_found(list): indices of the cameras that open.
        paused_changed(bool): the worker has taken a pause/resume into account (no frame is
            processed after ``True`` until a step, a seek or a change of setting).
        source_warning(str): what the source lost (an image skipped, a file cut off): a warning
            about this source only.
        busy(str): a long operation started ("" when it finished), e.g. loading a model.
        compare_ready(list): ``[(component, picture, explained), ...]`` for the frame on screen.
        fatal(str): what the command line asked for cannot be had (``required``): the window says
            why and closes, the app exits with code 2. The worker has stopped.
    """

    frame_ready = pyqtSignal()
    error = pyqtSignal(str)
    warning = pyqtSignal(str)
    source_warning = pyqtSignal(str)
    setting_failed = pyqtSignal(str)
    setting_applied = pyqtSignal()
    engine_changed = pyqtSignal(object)
    # (Python objects passed as they are, ``object``: a ``list`` signal is converted to a QVariantList in
    # the worker thread and back in the GUI thread, element by element)
    layers_ready = pyqtSignal(str, object)
    source_opened = pyqtSignal(object, object)
    source_failed = pyqtSignal(object, str)
    source_ended = pyqtSignal(int)
    recording_changed = pyqtSignal(bool, str)
    busy = pyqtSignal(str)
    cameras_found = pyqtSignal(object)
    paused_changed = pyqtSignal(bool)
    compare_ready = pyqtSignal(object)
    fatal = pyqtSignal(str)

    def __init__(self, engine_config: EngineConfig, render_config: RenderConfig | None = None, *,
                 demo_size: tuple[int, int] = (640, 480), demo_fps: float = 30.0,
                 required: frozenset[str] = frozenset(), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.loop = FrameLoop(engine_config, render_config or RenderConfig(), self,
                              demo_size=demo_size, demo_fps=demo_fps, required=required)
        self._thread: threading.Thread | None = None

    def start(self, source: str | int | None = None) -> None:
        """Start the worker thread (building the engine there) and open ``source`` if given."""
        if self._thread is not None:
            return
        if source is not None:
            self.open_source(source)
        # Joined on close (stop()); a daemon only so that a model download stuck on a dead network
        # cannot keep the process alive after the window has gone.
        self._thread = threading.Thread(target=self.loop.run, name="eigencam-pipeline", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.2) -> bool:
        """Stop the worker, close the source and the recorder; ``True`` if the thread ended in time.

        A worker still busy after ``timeout`` s is inside one long call it cannot leave (loading a
        model): the recording is finished here, and the thread, a daemon, is left to the process's
        end (``ui.app`` then exits without the interpreter's teardown, see ``end_process``)."""
        self.loop.stop_event.set()
        self.loop.wake.set()
        self.loop.playback.interrupt_opening()  # a stream being opened would hold the worker
        if self._thread is None:
            return True
        self._thread.join(timeout)
        alive = self._thread.is_alive()
        if alive:
            self.loop.finish_recording()
        else:
            self._thread = None
        return not alive

    @property
    def sources_asked(self) -> int:
        """How many sources were asked for: a ``source_ended`` of a lower number is stale."""
        return self.loop.sources_asked

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- commands (applied by the worker before its next frame) ----------------------------------
    def send(self, command: cmd.Command) -> None:
        self.loop.put(command)

    def find_cameras(self) -> None:
        """Probe for cameras in the worker (opening a camera can take a second); see ``cameras_found``."""
        self.send(cmd.FindCameras())

    def open_source(self, spec: str | int) -> None:
        self.send(cmd.OpenSource(spec))

    def reconfigure(self, **changes: Any) -> None:
        """Engine settings (fields of :class:`EngineConfig`), applied from the next frame."""
        self.send(cmd.Reconfigure(changes))

    def set_render(self, config: RenderConfig) -> None:
        self.send(cmd.SetRender(config))

    def set_paused(self, paused: bool, shown: Frame | None = None) -> None:
        """Pause or play; ``shown``: the frame on screen, where a pause lands (see :class:`~ui.commands.SetPaused`)."""
        self.send(cmd.SetPaused(bool(paused), shown if paused else None))

    def step(self, delta: int = 1) -> None:
        """Process one frame forward (``+1``) or, on seekable files, back (``-1``); pauses."""
        self.send(cmd.Step(int(delta)))

    def seek(self, index: int, *, loop: bool = False) -> None:
        self.send(cmd.Seek(int(index), loop))

    def start_recording(self, path: str | Path) -> None:
        self.send(cmd.StartRecording(Path(path)))

    def stop_recording(self) -> None:
        self.send(cmd.StopRecording())

    # -- read by the GUI thread --------------------------------------------------------------------
    def take(self) -> Packet | None:
        """The newest finished packet (``None`` if none is waiting); frees the slot."""
        return self.loop.mailbox.take()

    @property
    def engine(self) -> Engine | None:
        return self.loop.engine

    @property
    def capture_fps(self) -> float:
        """Frames per second the source delivered (counting frames dropped in between), over the
        two seconds before the newest frame processed."""
        rate = self.loop.capture_rate
        return rate.rate(now=rate.newest)

    @property
    def process_rate(self) -> RateMeter:
        return self.loop.process_rate

    @property
    def process_ms(self) -> float:
        """Engine time of the last frame, milliseconds."""
        return self.loop.process_ms

    @property
    def dropped(self) -> int:
        """Frames the live capture dropped for newer ones."""
        return self.loop.dropped

    @property
    def link_status(self) -> str:
        """A live source's trouble in one line ("reconnecting... attempt 3, no frame for 12 s
        (why)"), ``""`` while frames flow."""
        return self.loop.playback.link_status

    @property
    def frames_processed(self) -> int:
        return self.loop.frames_processed
