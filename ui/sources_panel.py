"""The window's source choice: the source box (a file, a folder, a URL, a camera, the demos),
opening a source, and what the window shows of the source that plays (:class:`SourceActions`,
mixed into :class:`~ui.window.MainWindow`)."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QFileDialog, QInputDialog

from eigencam_live.video import IMAGE_EXTENSIONS, STREAM_SCHEMES, VIDEO_EXTENSIONS, shown_url

from . import settings as remembered

__all__ = ["SourceActions", "open_filter"]


def open_filter() -> str:
    """The Open file dialog's filter: every video and image the sources read (a trial: .ts, .mpg,
    .gif and the images, all of which open, were filtered out)."""
    videos = " ".join(f"*{ext}" for ext in VIDEO_EXTENSIONS)
    images = " ".join(f"*{ext}" for ext in IMAGE_EXTENSIONS)
    return f"Videos and images ({videos} {images});;Videos ({videos});;Images ({images});;All files (*)"


class SourceActions:
    """Source handling of :class:`~ui.window.MainWindow` (its widgets and pipeline)."""

    def _left_the_end(self) -> None:
        """The end of a file is no longer where the picture is: its message goes."""
        self._end_text = ""
        if self.statusBar().currentMessage().startswith("End of"):
            self.statusBar().clearMessage()
        self._update_step()

    def _update_step(self) -> None:
        """Step ▶ is offered where there is a next frame: not once a file's end was reached, nor at
        a folder's last still (whose number of stills is known). A trial: it stayed enabled there and
        did nothing."""
        info, packet = self.source_info, self.last_packet
        if packet is self._packet_before_source:  # the last source's (a trial: its last still's number
            packet = None                         # disabled Step on a new folder until its first frame)
        last_still = bool(info is not None and info.kind == "folder" and info.frame_count and packet is not None
                          and packet.frame.index + 1 >= info.frame_count)
        self.shortcut_actions["step"].setEnabled(not (self._end_text or last_still))

    def _on_message_changed(self, text: str) -> None:
        """The rates stretch over the bar, and a message (snapshot saved, loading a model) takes
        their place while it shows; a file's end is said again when such a message goes (a trial:
        a model that failed to load left only "PAUSED" at the end)."""
        if not text and self._end_text:
            self.statusBar().showMessage(self._end_text)
            return
        self.stats_label.setVisible(not text)

    def _on_source_chosen(self, index: int) -> None:
        data = self.source_combo.itemData(index)
        # The box shows what plays until a new source has really opened (a cancelled dialog or a
        # failed open leaves it there).
        self._select_current_source()
        if data == "__file__":
            path, _ = QFileDialog.getOpenFileName(self, "Open a video or an image", self._dialog_folder(), open_filter())
            if path:
                self._last_folder = str(Path(path).parent)
                self.open_source(path)
        elif data == "__folder__":
            path = QFileDialog.getExistingDirectory(self, "Open a folder of images", self._dialog_folder())
            if path:
                self._last_folder = str(Path(path).parent)
                self.open_source(path)
        elif data == "__url__":
            dialog = QInputDialog(self)
            dialog.setWindowTitle("Open a stream")
            dialog.setLabelText("URL (rtsp://, http://, ...):")
            dialog.resize(max(520, dialog.width()), dialog.height())
            if dialog.exec_() and dialog.textValue().strip():
                self.open_source(dialog.textValue().strip())
        else:
            self.open_source(data)
            return
        # back from a dialog: the keys go to the picture, as before it (a trial: Space then opened the
        # source list instead of pausing the file just chosen)
        self.activateWindow()
        self.view.setFocus()

    def _dialog_folder(self) -> str:
        """Where the Open dialogs start: the folder of the file or folder that plays, else the last
        one a dialog went to (a trial: a file given on the command line, the dialog opened in the
        home folder)."""
        spec = self.source_spec
        if isinstance(spec, str) and Path(spec).exists():
            return str(Path(spec).resolve().parent)
        return self._last_folder

    def _select_current_source(self) -> None:
        if self.source_spec is None:
            return
        i = self.source_combo.findData(self.source_spec)
        if i >= 0:
            self.source_combo.setCurrentIndex(i)

    def _show_opening(self, spec: str | int) -> None:
        """Before the first source has opened, the source box is blank and the line under it names
        what is being opened; Back and Loop wait for it (a trial: a stream named on the command line
        took seconds to open while the box said "Demo clip" and Back was offered). A non-editable
        box does not draw a placeholder text in this Qt: the line says it."""
        self.shortcut_actions["back"].setEnabled(False)
        self.loop_check.setEnabled(False)
        i = self.source_combo.findData(spec)
        self.source_combo.setCurrentIndex(i)
        if i < 0:
            local = isinstance(spec, str) and Path(spec).exists()
            name = f"camera {spec}" if isinstance(spec, int) else Path(spec).name if local else shown_url(spec)
            if len(name) > 60:  # a URL with a token: two lines at most (the picture says it whole)
                name = f"{name[:40]}…{name[-19:]}"
            self.source_label.setText(f"Opening {name}…")

    def open_source(self, spec: str | int) -> None:
        """Open a new source (the engine's video state is reset; settings stay); the old one plays
        on until the new one has opened, and on if it fails. A failed source's error goes now: it is
        not about this one (a trial: it stayed up while a new URL opened)."""
        self.requested_source = spec
        if self.last_error is not None and self.last_error == self._source_error:
            self.error_banner.hide()
        self.pipeline.open_source(spec)

    def _offer_recent(self) -> None:
        """The sources of earlier runs in the list, before "Open file…" (a trial: they were gone
        after a restart); a file or folder no longer there is left out."""
        for spec in self.recent:
            if spec.lower().startswith(STREAM_SCHEMES):
                label = f"stream: {Path(shown_url(spec)).name or shown_url(spec)}"
            elif os.path.isdir(spec):
                label = f"folder: {Path(spec).name}"
            elif os.path.isfile(spec):
                label = f"{'image' if spec.lower().endswith(IMAGE_EXTENSIONS) else 'file'}: {Path(spec).name}"
            elif any(c in spec for c in "*?[") and glob.glob(spec):  # a glob of images
                label = f"folder: {Path(spec).name}"
            else:
                continue
            if self.source_combo.findData(spec) < 0:
                self.source_combo.insertItem(self.source_combo.count() - 3, label, spec)
                self.source_combo.setItemData(self.source_combo.count() - 4, shown_url(spec), Qt.ToolTipRole)

    def _on_source_warning(self, message: str) -> None:
        self._source_warning = message
        self.show_error(message, warning=True)

    def _on_source_opened(self, spec, info) -> None:
        self.source_info = info
        self._packet_before_source = self.last_packet  # until this source's first frame: none of its own
        self._source_first = None
        self._left_the_end()  # the last file's end is not this one's
        self.view.aspect = float(info.aspect)
        if spec == self.requested_source and self.last_error == self._source_error:
            # the requested source opened: a failed one's error goes (not another's, e.g. the model's;
            # when the demo took a failed source's place, its error stays)
            self.error_banner.hide()
        if self.last_error is not None and self.last_error == self._source_warning:
            self.error_banner.hide()  # what the last source lost (an image skipped) is not this one's
        self.source_spec = spec
        # one image opened on its own is read as a folder of one (a trial: "folder: photo.png")
        single = info.kind == "folder" and isinstance(spec, str) and Path(spec).is_file()
        self.recent = remembered.with_recent(self.recent, spec)
        i = self.source_combo.findData(spec)
        if i < 0:
            kind = "image" if single else info.kind
            label = (f"Camera {spec}" if info.kind == "webcam" else "Synthetic scene" if spec == "scene"
                     else f"{kind}: {Path(str(info.name)).name}")  # (the scene was "demo: demo scene", a trial)
            self.source_combo.insertItem(self.source_combo.count() - 3, label, spec)
            i = self.source_combo.findData(spec)
        self.source_combo.setCurrentIndex(i)
        self.shortcut_actions["back"].setEnabled(bool(info.seekable and not info.live))
        # a camera, a stream or the demos never end: nothing to loop (a trial: offered for a stream)
        self.loop_check.setEnabled(bool(info.seekable and not info.live))
        frames = f", {info.frame_count} frames" if info.frame_count else ""
        wide = "" if info.aspect == 1 else "*"  # anamorphic: said in the tooltip (the line has no room)
        self.source_label.setText(f"{info.width}×{info.height}{wide} @ {float(info.fps):.2f} fps{frames}")
        self.source_label.setToolTip(f"* shown as {round(info.width * info.aspect)}×{info.height}: its pixels are "
                                     f"{info.aspect.numerator}:{info.aspect.denominator} wide (anamorphic)" if wide else "")
        if single:
            self.source_label.setText(f"one image, {info.width}×{info.height}")
            self.source_label.setToolTip("")
        elif info.kind == "folder":
            self.source_label.setText(f"{info.frame_count} image{'s' if info.frame_count != 1 else ''}, each at its own size")
            self.source_label.setToolTip(f"Shown one at a time: → next, ← previous, Space plays them at "
                                         f"{float(info.fps):g} a second")
        seekable = bool(info.seekable and info.frame_count and not info.live)
        self.seek_widget.setVisible(seekable)
        if seekable:
            # wide enough for its longest text, so the slider keeps its length as the digits change
            # (a folder's: with room for a still's name, which is elided to it: a review saw the
            # slider 454 px long for a.jpg, 217 px for a phone's IMG_20240101_123456_HDR.jpg)
            longest = f"{info.frame_count} / {info.frame_count}" + (
                f"  ·  {'n' * 24}" if info.kind == "folder" else f"  ·  {info.frame_count / float(info.fps or 1):.2f} s")
            width = self.seek_label.fontMetrics().horizontalAdvance(re.sub(r"\d", "8", longest)) + 6
            self.seek_label.setMinimumWidth(width)
            self.seek_label.setMaximumWidth(width if info.kind == "folder" else 16777215)
            self.seek_slider.blockSignals(True)
            self.seek_slider.setRange(0, max(0, int(info.frame_count) - 1))
            self.seek_slider.setValue(0)
            self.seek_slider.blockSignals(False)
        self.setWindowTitle(f"eigencam-live — {info.name}")

    def _on_source_ended(self, number: int) -> None:
        if number != self.pipeline.sources_asked:  # a source chosen since (it was still ending): not that one's end
            return
        if self.loop_check.isChecked() and not self.paused:
            self.pipeline.seek(0, loop=True)
        else:
            if not self.paused:  # as a player does: play (Space) starts again from the beginning
                self.set_paused(True)
            what = "the folder" if self.source_info is not None and self.source_info.kind == "folder" else "file"
            # said while it stays there (5 s of it left only "PAUSED"), cleared when it plays again
            self._end_text = f"End of {what} — Space plays it again, ← steps back, or tick Loop files"
            self.statusBar().showMessage(self._end_text)
            self._update_step()

    def _on_source_failed(self, spec, message: str) -> None:
        self._source_error = message if self.source_spec is not None else f"{message} (showing the demo clip)"
        self.show_error(self._source_error)
        self._select_current_source()

    def _on_cameras(self, cameras: list) -> None:
        for index in cameras:
            if self.source_combo.findData(index) < 0 and self.source_combo.findData(str(index)) < 0:
                self.source_combo.insertItem(1, f"Camera {index}", index)
