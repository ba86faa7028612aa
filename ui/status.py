"""What the window says: the busy veil over the picture, the error banner, and the status bar's
rates (:class:`StatusReports`, mixed into :class:`~ui.window.MainWindow`)."""

from __future__ import annotations

import sys

import numpy as np

from .controls import TIPS
from .frame_loop import WORK
from .worker import EngineStatus

__all__ = ["BANNER_ERROR", "BANNER_WARN", "StatusReports"]

BANNER_WARN = "background:#5a4a1a; color:#ffe9b0; padding:6px 10px; border-radius:4px;"
BANNER_ERROR = "background:#6a2323; color:#ffd9d9; padding:6px 10px; border-radius:4px;"


class StatusReports:
    """Busy, error and rate reports of :class:`~ui.window.MainWindow` (its widgets and pipeline),
    and what it says of the engine in use."""

    def _update_badge(self) -> None:
        """In fullscreen, where no toolbar, status bar or banner shows, the picture's corner says
        that a recording runs, that the picture is paused (a key pressed there did nothing to see), and
        that the network is untrained (a trial: fullscreen, the view an audience sees, hid it)."""
        untrained = self.status is not None and not self.status.trained
        said = ["● REC"] * bool(self.recording_path) + ["UNTRAINED"] * untrained + ["PAUSED"] * bool(self.paused)
        badge = "  ·  ".join(said) if self.isFullScreen() else ""
        if badge != self.view.badge:
            self.view.badge = badge
            self.view.update()

    def _on_engine_changed(self, status: EngineStatus) -> None:
        if self.status is not None and any(getattr(self.status.config, k) != getattr(status.config, k) for k in WORK):
            self.latencies.clear()  # the old setting's (an input size 2 s a frame slower showed 0.8 s)
        self.status = status
        self.engine_config = status.config
        self._sync_controls(status.config)
        self.in_use_label.setText(f"{status.device} · {status.backend} · {status.dtype} · {status.weights_said}")
        # a factory's or a file's name runs past the box's edge: said in full where it is asked about
        self.model_combo.setToolTip(f"In use: {status.config.model}\n\n{TIPS['model']}")
        detector = status.detector
        what = f"Detections (score ≥ {status.config.score:.2f})" if detector else "Predictions (top 5)"
        self.predictions_title = what if status.trained else f"{what.split(' (')[0]} — untrained, meaningless"
        self.predictions_box.setTitle(self.predictions_title)
        # (a detector's box says it in its title alone: its panel has two rows more above it)
        self.predictions.untrained = not status.trained and not detector
        grid = getattr(self, "compare_grid", None)
        if grid is not None:  # its highlight follows what is in use, chosen there or here
            grid.current = status.layer if grid.mode == "layers" else status.config.component
            grid.update()
        self._end_busy()
        # What runs otherwise than asked, for as long as it does (a trial: bf16 emulated went after
        # 30 s while it ran on, and stayed after fp32 was chosen)
        said, self._backend_warning = self._backend_warning, status.backend_warning
        if status.backend_warning and status.backend_warning != said:
            self.show_error(status.backend_warning, warning=True, lasting=True)
        elif said and said != status.backend_warning and self.last_error == said:
            self.error_banner.hide()
        if not status.trained:
            if status.warning:
                text = (
                    f"<b>Untrained network:</b> no pretrained weights for {status.config.model} (offline, none "
                    "cached), so heatmaps and labels mean nothing."
                )
            else:
                text = (
                    "<b>Untrained network</b> (random weights on purpose): heatmaps and labels mean nothing."
                )
            self.warning_banner.setText(text)
            self.warning_banner.setToolTip(
                (status.warning or "") + "\nConnect once to cache the pretrained weights, or load weights of "
                "your own: Weights > Load file… (or --weights FILE.pth).")
            self.warning_banner.show()
        else:
            self.warning_banner.hide()
        self._update_badge()
        self._select_layer(status.layer)
        self._fit_controls()

    def _on_busy(self, what: str) -> None:
        """A long operation (loading a model) started, or ended with ``""``: said over the picture,
        and the panels emptied (the old model's labels and spectrum are not the new one's). After a
        model load the veil stays until the new model's first frame is on screen (its first frame
        may take seconds more: an ONNX export)."""
        if what:
            if what.startswith("loading"):
                self._veil_until_frame, self._failed_while_veiled = True, False
                if self.last_error is not None and self.last_error == self._model_warning:
                    self.error_banner.hide()  # of the model being replaced (a trial: up 15 s on the next one's frames)
            self.busy_text = what[0].upper() + what[1:]
            self.statusBar().showMessage(self.busy_text)
            self.view.set_busy(self.busy_text)
            if self.last_packet is None:
                self.view.placeholder = self.busy_text
            if what.startswith("loading"):
                self._layers_pending()
                self.predictions.clear(self.busy_text)
                self.spectrum.set_spectrum(np.zeros(0, np.float32), self.engine_config.component)
                self.latencies.clear()  # the old model's: at a slow new one they stood for minutes
        elif not self._veil_until_frame or self._failed_while_veiled:
            self._end_busy(frame_shown=True)  # no frame will come to lift it: the error says why

    def _end_busy(self, *, frame_shown: bool = False) -> None:
        if self._veil_until_frame and not frame_shown:
            return
        self._veil_until_frame = self._failed_while_veiled = False
        if self.busy_text:
            self.busy_text = ""
            self.statusBar().clearMessage()
            self.view.set_busy("")
            self.predictions.placeholder = "no frame yet"
            self.predictions.update()

    def _on_fatal(self, message: str) -> None:
        """The command line asked for what cannot be had: say it (stderr) and close; the app exits 2."""
        if self.fatal_error is not None:
            return
        self.fatal_error = message
        print(f"error: {message}", file=sys.stderr, flush=True)
        self.close()  # the last window: the event loop ends, and the app exits 2 (ui.app)

    def _on_model_warning(self, message: str) -> None:
        """What differs in the model running from what was asked (a network held to one input size
        stretches the frames; a component it does not have): said until it is replaced."""
        self._model_warning = message
        self.show_error(message, warning=True)

    def _on_setting_failed(self, message: str) -> None:
        self._setting_error = message
        self.show_error(message)

    def _on_setting_applied(self) -> None:
        """A change was applied: a refused one's error, still up, no longer says what is in use."""
        if self.last_error == self._setting_error and self.error_banner.isVisible():
            self.error_banner.hide()

    def show_error(self, message: str, warning: bool = False, lasting: bool = False) -> None:
        """Show a one-line error over the view for 30 s; the app keeps running. A ``warning`` (what
        runs differs from what was asked: a fallback to torch, a size the network is held to, an
        image skipped) is shown in the warning's colours; a ``lasting`` one until its condition goes
        (the caller hides it) or it is clicked away."""
        self.last_error = message
        self.errors.append(message)
        if not warning:  # a failure: no frame will come to lift the veil (a warning's model runs)
            self._failed_while_veiled = self._veil_until_frame
        self.error_banner.setStyleSheet(BANNER_WARN if warning else BANNER_ERROR)
        heading = "Warning" if warning else "Error"
        self.error_banner.setText(f"<b>{heading}:</b> {message}  <small>(click&nbsp;to&nbsp;dismiss)</small>")
        self.error_banner.show()
        if lasting:
            self._error_timer.stop()
        else:
            self._error_timer.start(30000)

    def _update_stats(self) -> None:
        p = self.pipeline
        if self.paused:
            self.stats_label.setText(f"PAUSED  ·  last frame {p.process_ms:.0f} ms  ·  dropped {p.dropped}")
            return
        if p.link_status:  # a lost live source: say so, not the rates of before
            self.stats_label.setText(p.link_status)
            return
        lat = list(self.latencies)[-60:]
        latency = f"{np.median(lat):.0f} ms" if lat else "—"
        # a rate not measured yet (just after a new setting: two frames make one) is "—", not 0.0 fps,
        # which read as a stalled capture (a trial)
        rates = (p.capture_fps, p.process_rate.rate(), self.display_rate.rate())
        # under 1 fps in two figures (a detector at 16.6 s a frame read "0.0 fps (16602 ms)", a trial)
        capture, processing, display = (f"{r:.2f}" if 0 < r < 1 else f"{r:.1f}" if r > 0 else "—" for r in rates)
        cap, proc, disp = (f"{r:.2f}" if 0 < r < 1 else f"{r:.0f}" if r > 0 else "—" for r in rates)
        # (none timed since the rates started over: no time, not "(0 ms)", a trial)
        took = ("" if p.process_ms <= 0 else f" ({p.process_ms:.0f} ms)" if p.process_ms < 10_000
                else f" ({p.process_ms / 1000:.1f} s)")
        full = (f"capture {capture} fps  ·  processing {processing} fps{took}  ·  "
                f"display {display} fps  ·  latency {latency}  ·  dropped {p.dropped}")
        short = f"cap {cap} · proc {proc} fps{took} · disp {disp} · lat {latency} · drop {p.dropped}"
        fits = self.stats_label.fontMetrics().horizontalAdvance(full) <= self.stats_label.width()
        self.stats_label.setText(full if fits else short)
        self.stats_label.setToolTip("capture: frames the source delivers per second; processing: frames the "
                                    "model finishes per second (time of the last one); display: frames shown "
                                    "per second; latency: from capture (files: from the frame's due time) to "
                                    "the screen, median of the last 60; dropped: live frames skipped because "
                                    "the model was busy (not counted while paused)")

    def say_error(self, message: str) -> None:
        """An error the user caused just now: in the banner and in the status bar."""
        self.show_error(message)
        self.statusBar().showMessage(message[0].upper() + message[1:], 6000)
