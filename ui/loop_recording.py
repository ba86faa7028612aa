"""The worker loop's recording: a mixin of :class:`~ui.frame_loop.FrameLoop` (no Qt here).

Starting a recording (its size: a folder's largest image), writing each frame drawn, stopping it,
and finishing it from another thread when the worker is stuck; the loop's ``recorder``,
``_recorder_lock``, ``playback``, ``shown``, pause state and ``out`` are the loop's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eigencam_live.errors import EigenCamError
from eigencam_live.render import picture_size

from . import commands as cmd

if TYPE_CHECKING:
    from .handoff import Packet

__all__ = ["LoopRecording"]


class LoopRecording:
    """Recording, as methods of :class:`~ui.frame_loop.FrameLoop`."""

    def _record(self, packet: Packet) -> None:
        """Write the picture of the frame just processed; a failure is said and ends the recording."""
        try:
            with self._recorder_lock:
                self.recorder.write(packet.image, packet.frame.pts)
            self.shown.recorded()
        except EigenCamError as exc:
            self.out.error.emit(str(exc))
            self._stop_recording()

    def _start_recording(self, command: cmd.StartRecording) -> None:
        self._stop_recording()
        if not self.playback.is_open:
            self.out.recording_changed.emit(False, "")
            self.out.error.emit("nothing to record: no source is open")
            return
        info = self.playback.info
        # A file's sound goes with it; live sources (cameras, streams, the demos) have none to copy.
        sound = info.path if info is not None and info.has_audio and not info.live else None
        self.recorder.start(command.path, fps=self.playback.fps or 30.0, audio_from=sound,
                            aspect=info.aspect if info is not None else 1, size=self._recording_size())
        self.shown.recording_started()
        self.out.recording_changed.emit(True, str(command.path))
        if self._paused and self.shown.last is not None:  # the frame on screen is the first one recorded
            self._process(self.shown.last, record=True)

    def _recording_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of a recording of a source whose frames differ in size (a folder):
        its largest frame drawn as the frame on screen is (side by side: twice as wide). A trial:
        a recording begun on a folder's 20 x 12 image squeezed every later image into 20 x 12."""
        largest = self.playback.largest_frame()
        return None if largest is None else picture_size(self._render.view, *largest)

    def _stop_recording(self, timeout: float = -1) -> None:
        """Finish the recording; says ``recording_changed(False, path)``, with ``path`` empty when
        no frame was written (then there is no file). ``timeout``: longest wait for a write in
        progress (-1: no limit); nothing is done when it passes."""
        if not self._recorder_lock.acquire(timeout=timeout):
            return
        try:
            path = self.recorder.path
            if path is None:
                return
            written = self.recorder.frames_written
            try:
                path = self.recorder.stop() or path
            except Exception as exc:
                self.out.error.emit(f"finishing the recording {path}: {exc}")
                written = 0
        finally:
            self._recorder_lock.release()
        self.out.recording_changed.emit(False, str(path) if written else "")

    def finish_recording(self, timeout: float = 0.5) -> None:
        """Finish the recording from another thread (closing while the worker is stuck, e.g. loading
        a model): the lock keeps it from racing a write, and a write stuck for ``timeout`` s is
        given up on."""
        self._stop_recording(timeout)
