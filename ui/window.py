"""The main window: the view, the controls dock, the predictions and spectrum panels, the status bar.

Its parts are mixins in their own modules: :class:`~ui.controls.ControlsSync` (the controls in
step with the engine), :class:`~ui.sources_panel.SourceActions` (choosing and opening sources),
:class:`~ui.status.StatusReports` (busy veil, errors, rates, the engine in use) and
:class:`~ui.inspection.InspectionActions` (snapshots, recordings, the compare grid).

Widgets live on the GUI thread only and never call the model: every change goes to the
:class:`~ui.worker.Pipeline` as a command and applies from the next frame (or, while paused, to
the frame on screen).
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

# torchvision is imported with the window, on the main thread, before any QApplication: imported
# lazily by the worker thread while the xcb platform plugin was loading, it crashed in triton's
# native library (dlopen from two threads at once; benchmarks/bench_app.py under X did, every time).
import torch  # noqa: F401
import torchvision.models  # noqa: F401
from PyQt5.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import (
    QAbstractSpinBox,
    QAction,
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from eigencam_live.engine import EngineConfig
from eigencam_live.models import Layer
from eigencam_live.render import TWO_PANEL_VIEWS, RenderConfig, colormap_lut, fitting_layout

from . import settings as remembered
from .controls import TIPS, ControlsSync, build_panel
from .focus import FrameKeys
from .frame_view import FrameView, panels_of
from .inspection import InspectionActions, default_snapshot_dir, layers_to_compare
from .rates import RateMeter
from .shortcuts import SHORTCUTS, shortcut
from .sources_panel import SourceActions
from .status import BANNER_ERROR, BANNER_WARN, StatusReports
from .widgets import PredictionsPanel, SeekSlider, SettingsScroll, ShortcutsOverlay
from .worker import EngineStatus, Packet, Pipeline

__all__ = ["MainWindow", "default_snapshot_dir", "layers_to_compare"]

#: The other texts a toolbar button takes (see :meth:`MainWindow.set_paused`, ``_on_recording_changed``).
_OTHER_TEXTS = {"pause": ("Resume",), "record": ("■ Stop recording",)}


class MainWindow(ControlsSync, InspectionActions, SourceActions, StatusReports, QMainWindow):
    """The eigencam-live window.

    Args:
        engine_config: initial engine settings.
        render_config: initial drawing settings.
        source: what to open first (``"demo"``, a camera index, a file, a URL).
        settings: where settings are remembered (``None``: not remembered).
        snapshot_dir: where snapshots and recordings go.
        demo_size: ``(width, height)`` of the synthetic scene ("scene").
        demo_fps: its frame rate.
        required: what the command line named (``"source"``, the engine settings' names): if that
            cannot be had, the window closes saying why on stderr (:attr:`fatal_error`), its
            settings not saved, and the app exits with code 2, rather than running something else.

    Signals:
        frame_shown(object): a :class:`~ui.worker.Packet` was just put on screen.
    """

    frame_shown = pyqtSignal(object)

    def __init__(
        self,
        engine_config: EngineConfig,
        render_config: RenderConfig,
        source: str | int = "demo",
        *,
        settings: QSettings | None = None,
        snapshot_dir: str | Path | None = None,
        demo_size: tuple[int, int] = (640, 480),
        demo_fps: float = 30.0,
        required: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.setWindowTitle("eigencam-live")
        self.setAcceptDrops(True)
        self.settings = settings
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir else default_snapshot_dir()
        self.engine_config = engine_config
        self.render_config = render_config
        self.status: EngineStatus | None = None
        self.source_info = None
        # What plays (set once a source has opened: only that is remembered) and what was asked for.
        self.source_spec: str | int | None = None
        self.requested_source: str | int = source
        self.busy_text = ""
        self._veil_until_frame = False  # a model was loaded: the old picture stays veiled till a new one
        self._failed_while_veiled = False  # an error came while veiled: no frame may come to lift it
        self._last_folder = str(Path.home())
        self.last_packet: Packet | None = None
        self._packet_before_source: Packet | None = None  # the frame on screen when the source opened
        self._source_first: int | None = None  # the index of the source's first frame (a folder's first readable image)
        self.last_error: str | None = None
        self._source_error: str | None = None  # the last failed source's message
        self._source_warning: str | None = None  # the last thing a source lost (an image skipped)
        self._model_warning: str | None = None  # the last thing said of the model running (a stretch)
        self._setting_error: str | None = None  # the last refused setting's message
        self.fatal_error: str | None = None  # what the command line asked for and could not be had
        self.errors: list[str] = []
        self.paused = False
        self._end_text = ""  # a file's end, said in the status bar while the picture stays there
        self._pauses_sent = 0  # the pauses sent to the worker (see Packet.pauses)
        self.recording_path: str | None = None
        self.names_given: set[Path] = set()  # the snapshots' and recordings' files named so far (see free_name)
        self._resume_after_compare = False  # the compare grid paused what was playing
        self._compare_waiting = False  # a compare request is with the worker
        self.frames_displayed = 0
        self.latencies: deque[float] = deque(maxlen=600)  # ms, capture -> on screen
        self.display_rate = RateMeter()
        self._closed = False
        self._frame_size: tuple[int, int] | None = None  # (w, h) of the frames shown: the two-panel layout fits it
        self.layers: list[Layer] = []  # the model's feature layers, for compare_layers
        self._compare_shapes: dict[str, tuple[int, ...]] = {}  # the compared layers' (C, h, w), for the captions

        self.pipeline = Pipeline(engine_config, render_config, demo_size=demo_size, demo_fps=demo_fps,
                                 required=required, parent=self)
        self._build_ui()
        self._connect_pipeline()
        #: files, folders and URLs opened, the latest first: offered in the source list, and remembered
        self.recent = remembered.load_recent(settings) if settings is not None else []
        self._offer_recent()
        self._show_opening(source)
        if settings is not None:
            # (a trial: the timecode ticked was unticked at the next start, the source and model kept)
            ticks = remembered.load_panel(settings)
            self.colorbar_check.setChecked(ticks["colorbar"])
            self.timecode_check.setChecked(ticks["timecode"])
            geometry = remembered.load_geometry(settings)
            if geometry is not None:
                self.restoreGeometry(geometry)
                self.fit_on_screen()
        self._stats_timer = QTimer(self)
        self._stats_timer.timeout.connect(self._update_stats)
        self._stats_timer.start(500)
        self._error_timer = QTimer(self, singleShot=True)
        self._error_timer.timeout.connect(self.error_banner.hide)
        self._backend_warning: str | None = None  # shown while it holds (see _on_engine_changed)
        self.pipeline.start(source)
        self.pipeline.find_cameras()

    # -- construction ----------------------------------------------------------------------------
    def _build_ui(self) -> None:
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.warning_banner = QLabel(central)
        self.warning_banner.setStyleSheet(BANNER_WARN)
        self.warning_banner.setWordWrap(True)
        self.warning_banner.hide()
        self.error_banner = QLabel(central)
        self.error_banner.setStyleSheet(BANNER_ERROR)
        self.error_banner.setWordWrap(True)
        self.error_banner.setToolTip("Click to dismiss")
        self.error_banner.mousePressEvent = lambda _e: self.error_banner.hide()
        self.error_banner.hide()
        self.view = FrameView(central)
        if self.render_config.view != "original":  # the panel's tick box, made later, starts ticked
            self.view.set_colorbar(colormap_lut(self.render_config.colormap))
        self.view.resized.connect(self._refit_view)
        self.overlay = ShortcutsOverlay(self.view)
        seek_row = QHBoxLayout()
        self.seek_slider = SeekSlider(central)
        self.seek_slider.setFocusPolicy(Qt.NoFocus)
        self.seek_label = QLabel("", central)
        self.seek_label.setMinimumWidth(110)
        seek_row.addWidget(self.seek_slider, 1)
        seek_row.addWidget(self.seek_label)
        self.seek_widget = QWidget(central)
        self.seek_widget.setLayout(seek_row)
        seek_row.setContentsMargins(0, 0, 0, 0)
        self.seek_widget.hide()
        layout.addWidget(self.warning_banner)
        layout.addWidget(self.error_banner)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.seek_widget)
        self.setCentralWidget(central)
        self.seek_slider.valueChanged.connect(self._on_seek)

        dock = QDockWidget("Controls", self)
        dock.setObjectName("controls")
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        panel = build_panel(self, dock)

        self.toolbar = self._make_actions()

        scroll = SettingsScroll(dock)
        scroll.setWidget(panel)
        scroll.setFrameShape(SettingsScroll.NoFrame)
        self.controls_scroll = scroll
        # the settings scroll; the results under them stay in view (no taller than the settings
        # need: on a tall screen the results follow them, the free room below)
        holder = QWidget(dock)
        stack = QVBoxLayout(holder)
        stack.setContentsMargins(0, 0, 0, 0)
        stack.setSpacing(0)
        stack.addWidget(scroll)
        stack.addWidget(self.results_panel)
        stack.addStretch(1)
        self._fit_controls()
        dock.setWidget(holder)
        self.addDockWidget(Qt.RightDockWidgetArea, dock)
        self.controls_dock = dock
        self._set_tips()

        self._sync_controls(self.engine_config, self.render_config)
        self.model_combo.activated.connect(lambda i: self._choose_model(self.model_combo.itemData(i)))
        self.model_combo.lineEdit().returnPressed.connect(self._model_typed)
        self.layer_combo.activated.connect(lambda _i: self._engine(layer=self.layer_combo.currentData()))
        self.layer_filter.textChanged.connect(self._filter_layers)
        self.layer_filter.returnPressed.connect(self._pick_filtered_layer)
        self.weights_combo.activated.connect(self._on_weights_chosen)
        self.component_spin.valueChanged.connect(lambda v: self._engine(component=int(v)))
        self.method_combo.activated.connect(lambda _i: self._engine(method=self.method_combo.currentData()))
        self.smoothing_spin.valueChanged.connect(lambda v: self._engine(smoothing=round(float(v), 2)))
        self.short_side_spin.valueChanged.connect(self._short_side)
        for key, combo in (("device", self.device_combo), ("backend", self.backend_combo),
                           ("precision", self.precision_combo)):
            combo.activated.connect(lambda _i, key=key, combo=combo: self._device_pick(key, combo.currentData()))
        self.view_combo.activated.connect(lambda _i: self._choose_view(self.view_combo.currentData()))
        self.alpha_slider.valueChanged.connect(lambda v: self._render(alpha=v / 100.0))
        self.colormap_combo.activated.connect(lambda _i: self._render(colormap=self.colormap_combo.currentData()))
        self.score_spin.valueChanged.connect(lambda v: self._engine(score=round(float(v), 2)))
        self.boxes_check.toggled.connect(lambda on: self._render(boxes=bool(on)))
        self.in_boxes_check.toggled.connect(lambda on: self._render(in_boxes=bool(on)))

        self.stats_label = QLabel("", self)
        self.stats_label.setMinimumWidth(1)  # elided by the status bar, never pushing the window wider
        self.rec_indicator = QLabel("● REC", self)
        self.rec_indicator.setStyleSheet("color:white; background:#c62828; font-weight:bold; padding:1px 8px;"
                                         "border-radius:3px;")
        self.rec_indicator.hide()
        self.statusBar().addPermanentWidget(self.stats_label, 1)
        # at the right end whether the rates show or a message has their place (a trial: it jumped
        # from the right edge to the bar's middle as the "Recording to ..." message went)
        self.statusBar().addPermanentWidget(self.rec_indicator)
        # the rates stretch over the bar: a message (snapshot saved, end of file) takes their place while it shows
        self.statusBar().messageChanged.connect(self._on_message_changed)
        self.view.setFocus()

    def fit_on_screen(self) -> None:
        """Shrink and move the window onto the screen's free area: Qt restores a remembered
        geometry as it was saved, off a smaller screen (the status bar and the controls' right side
        cut off). Again once shown, when the title bar's height is known."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        free, frame, inner = screen.availableGeometry(), self.frameGeometry(), self.geometry()
        extra_w, extra_h = frame.width() - inner.width(), frame.height() - inner.height()  # the title bar, borders
        w, h = min(frame.width(), free.width()), min(frame.height(), free.height())
        if (w, h) != (frame.width(), frame.height()):
            self.resize(w - extra_w, h - extra_h)
        x = min(max(frame.x(), free.x()), free.right() + 1 - w)
        y = min(max(frame.y(), free.y()), free.bottom() + 1 - h)
        if (x, y) != (frame.x(), frame.y()):
            self.move(x, y)

    def _fit_controls(self) -> None:
        """Room for the controls and a vertical scrollbar beside them, never over their arrows and
        spin buttons (called again when texts in the panel change)."""
        scroll = self.controls_scroll
        bar = scroll.style().pixelMetric(scroll.style().PM_ScrollBarExtent)
        need = scroll.widget().minimumSizeHint().width() + bar + 2 * scroll.frameWidth() + 2
        if need != scroll.minimumWidth():
            scroll.setMinimumWidth(max(350, need))


    def _set_tips(self) -> None:
        for name, widget in (("model", self.model_combo), ("weights", self.weights_combo), ("layer", self.layer_combo),
                             ("component", self.component_spin), ("method", self.method_combo),
                             ("smoothing", self.smoothing_spin), ("short_side", self.short_side_spin),
                             ("device", self.device_combo), ("precision", self.precision_combo),
                             ("view", self.view_combo), ("alpha", self.alpha_slider),
                             ("colormap", self.colormap_combo), ("score", self.score_spin),
                             ("boxes", self.boxes_check), ("in_boxes", self.in_boxes_check)):
            widget.setToolTip(TIPS[name])

    def _make_actions(self) -> QToolBar:
        """One action per row of :data:`~ui.shortcuts.SHORTCUTS`: its keys work anywhere in the
        window, and rows with a button also appear on the toolbar."""
        bar = QToolBar("Inspection", self)
        bar.setObjectName("inspection")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonTextOnly)
        # where the window is too narrow for every button, the rest are behind "»": shown as a button
        bar.setStyleSheet("QToolButton#qt_toolbar_ext_button { background: #a9b1c4; border-radius: 3px; }")
        self.shortcut_actions: dict[str, QAction] = {}
        group = None
        for row in SHORTCUTS:
            if row.run is None:
                continue
            action = QAction(row.button_text() if row.button else row.help, self)
            action.setShortcuts([QKeySequence(k) for k in row.keys])
            action.setShortcutContext(Qt.WindowShortcut)
            action.triggered.connect(lambda _checked=False, run=row.run: run(self))
            self.addAction(action)  # the keys work even where the toolbar is hidden
            self.shortcut_actions[row.name] = action
            if row.button:
                if group is not None and row.group != group:
                    bar.addSeparator()
                group = row.group
                bar.addAction(action)
                button = bar.widgetForAction(action)
                button.setFocusPolicy(Qt.NoFocus)
                # As wide as its widest text (Pause/Resume, Record/Stop): the buttons never shift.
                widest = max(button.fontMetrics().horizontalAdvance(row.button_text(t))
                             for t in (None, *_OTHER_TEXTS.get(row.name, ())))
                button.setMinimumWidth(widest + 2 * button.style().pixelMetric(button.style().PM_ButtonMargin) + 8)
        self.pause_action = self.shortcut_actions["pause"]
        self.record_action = self.shortcut_actions["record"]
        self.addToolBar(Qt.TopToolBarArea, bar)
        # A spin box with the focus would take ← and → for its text cursor: they step frames instead.
        # Every one of them (a trial: in the detector's score box Space blanked the number, H did nothing).
        self._frame_keys = FrameKeys(self)
        for spin in self.findChildren(QAbstractSpinBox):
            spin.installEventFilter(self._frame_keys)
        return bar

    def _connect_pipeline(self) -> None:
        p = self.pipeline
        p.frame_ready.connect(self._on_frame_ready)
        p.error.connect(self.show_error)
        p.warning.connect(self._on_model_warning)
        p.source_warning.connect(self._on_source_warning)
        p.setting_failed.connect(self._on_setting_failed)
        p.setting_applied.connect(self._on_setting_applied)
        p.engine_changed.connect(self._on_engine_changed)
        p.layers_ready.connect(self._on_layers)
        p.source_opened.connect(self._on_source_opened)
        p.source_failed.connect(self._on_source_failed)
        p.source_ended.connect(self._on_source_ended)
        p.paused_changed.connect(self._on_paused_changed)
        p.recording_changed.connect(self._on_recording_changed)
        p.busy.connect(self._on_busy)
        p.cameras_found.connect(self._on_cameras)
        p.compare_ready.connect(self._on_compare)
        p.fatal.connect(self._on_fatal)

    # -- controls -> pipeline ----------------------------------------------------------------------
    def _engine(self, **changes) -> None:
        self.pipeline.reconfigure(**changes)

    def _render(self, **changes) -> None:
        try:
            self.render_config = RenderConfig(**{**self.render_config.__dict__, **changes})
        except Exception as exc:
            self.show_error(str(exc))
            return
        self.view.set_colorbar(self.colorbar_shown())
        self.pipeline.set_render(self.render_config)

    def _choose_view(self, view: str) -> None:
        """A view picked in the list; the two-panel one is laid out as fits the view best."""
        self._render(view=self._fitting_view() if view in TWO_PANEL_VIEWS else view)

    def _fitting_view(self) -> str:
        """``side-by-side`` or ``stacked``: whichever shows the frame larger in the view now."""
        frame = self._frame_size
        if frame is None:
            return self.render_config.view if self.render_config.view in TWO_PANEL_VIEWS else TWO_PANEL_VIEWS[0]
        return fitting_layout(frame, (self.view.width(), self.view.height()))

    def _refit_view(self) -> None:
        """After the view or the frame changed size: the other two-panel layout if it now fits better.
        Not while recording: the file keeps the layout it began with (the other one, letterboxed
        into its size, was three quarters black)."""
        if self.render_config.view in TWO_PANEL_VIEWS and not self._closed and self.recording_path is None:
            fitted = self._fitting_view()
            if fitted != self.render_config.view:
                self._render(view=fitted)

    # -- pipeline -> widgets -----------------------------------------------------------------------
    def _on_frame_ready(self) -> None:
        packet = self.pipeline.take()
        if packet is None or self._closed or (packet.played and packet.pauses < self._pauses_sent):  # in flight at
            return  # the last pause: the pause stays on the frame on screen, and play goes on from it
        self.view.set_image(packet.image, panels_of(packet.image.shape, packet.frame.image.shape))
        size = (round(packet.frame.image.shape[1] * self.view.aspect), int(packet.frame.image.shape[0]))  # as shown
        if size != self._frame_size:
            self._frame_size = size
            self._refit_view()
        now = time.monotonic()
        if not self.paused:  # a step or a redraw while paused has no capture-to-screen latency
            self.latencies.append((now - packet.origin) * 1000.0)
            self.display_rate.tick(t=now)
        self.frames_displayed += 1
        self.last_packet = packet
        if self._source_first is None:
            self._source_first = packet.frame.index
        self._end_busy(frame_shown=True)  # signals come in order: this frame is the new engine's
        r = packet.result
        if r.detections is not None:  # a detector's frame: say why the list is empty
            score = self.engine_config.score
            self.predictions.placeholder = f"no box scores ≥ {score:.2f} on this frame" if score > 0 else "no boxes on this frame"
            many = len(r.detections) > PredictionsPanel.ROWS  # the list shows the best five: say of how many
            shown = f" · {PredictionsPanel.ROWS} of {len(r.detections)}" if many else ""
            self.predictions_box.setTitle(self.predictions_title + shown)
        self.predictions.scores = r.detections is not None
        self.predictions.set_predictions(r.predictions, untrained=not (self.status and self.status.trained)
                                         and r.detections is None)  # (a detector's: said in its title)
        self.spectrum.set_spectrum(r.explained, r.component)
        if self.seek_widget.isVisible():
            if not self.seek_slider.isSliderDown():  # never pull the handle from under the mouse
                self.seek_slider.blockSignals(True)
                self.seek_slider.setValue(packet.frame.index)
                self.seek_slider.blockSignals(False)
            info = self.source_info
            total = info.frame_count if info else None
            if total and packet.frame.index >= total:  # a count that fell short: recordings joined end
                total = None  # to end count their first part's frames (it read "150 / 100")
            # stills: no time, their names (a trial: which photo was on screen was said nowhere)
            counted = f"{packet.frame.index + 1}" + (f" / {total}" if total else "")
            if packet.still:  # elided to the label's room (the slider keeps its length)
                fm = self.seek_label.fontMetrics()
                room = self.seek_label.minimumWidth() - fm.horizontalAdvance(f"{counted}  ·  ") - 6
                when = f"  ·  {fm.elidedText(packet.still, Qt.ElideMiddle, max(room, 0))}"
            else:
                when = "" if info and info.kind == "folder" else f"  ·  {packet.seconds:.2f} s"
            self.seek_label.setText(f"{counted}{when}")
        # nothing before a file's first frame, nor before a folder's first readable image (a trial:
        # Back there only said again that the unreadable one was skipped)
        info = self.source_info
        first = (self._source_first or 0) if info is not None and info.kind == "folder" else 0
        # nor past a count that fell short (joined recordings: a seek finds no frame there, a review)
        self.shortcut_actions["back"].setEnabled(bool(info and info.seekable and not info.live and packet.frame.index > first
                                                      and not (info.frame_count and packet.frame.index > info.frame_count)))
        self._update_step()
        self.refresh_compare()
        self.frame_shown.emit(packet)

    # -- inspection --------------------------------------------------------------------------------
    def toggle_pause(self) -> None:
        self.set_paused(not self.paused)

    def set_paused(self, paused: bool) -> None:
        self._resume_after_compare &= paused  # resumed meanwhile: the compare grid's closing leaves it so
        self._pauses_sent += paused  # (see Packet.pauses)
        self.pipeline.set_paused(paused, self.last_packet.frame if self.last_packet is not None else None)
        self._on_paused_changed(paused)

    def _on_paused_changed(self, paused: bool) -> None:
        """Paused or playing, by the user or by the worker (a folder of stills opens paused)."""
        self.paused = paused
        if not paused:
            self._left_the_end()
        self.latencies.clear()  # a latency across a pause is the pause's length
        self.display_rate.clear()
        self.pause_action.setText(shortcut("pause").button_text("Resume" if paused else None))
        self._update_stats()
        self._update_badge()
        if paused:
            self.refresh_compare()  # (a review: played and paused again, the grid kept the old frame)

    def step(self, delta: int = 1) -> None:
        """Pause and show the next frame (``+1``) or, on files, the previous one (``-1``)."""
        if not self.paused:
            self.set_paused(True)
        if delta < 0:
            self._left_the_end()
        self.pipeline.step(delta)

    def _on_seek(self, value: int) -> None:
        self._left_the_end()
        self.pipeline.seek(value)

    def toggle_fullscreen(self) -> None:
        """The picture alone on the screen (and the seek bar of a file); Esc or F brings back the
        panels, the toolbar, the status bar and any banner."""
        chrome = (self.controls_dock, self.toolbar, self.statusBar())
        if self.isFullScreen():
            self.showNormal()
            for widget in chrome:
                widget.show()
            for banner, was in getattr(self, "_banners_before_fullscreen", ()):
                banner.setVisible(was)
        else:
            self._banners_before_fullscreen = [(b, b.isVisible()) for b in (self.warning_banner, self.error_banner)]
            for widget in (*chrome, self.warning_banner, self.error_banner):
                widget.hide()
            self.showFullScreen()
        self._update_badge()

    def toggle_help(self) -> None:
        self.overlay.setGeometry(self.view.rect())
        self.overlay.setVisible(not self.overlay.isVisible())
        self.overlay.raise_()

    def escape(self) -> None:
        """Close the help, else a compare window, else leave fullscreen (a compare window that has
        the focus closes itself on Esc)."""
        grid = getattr(self, "compare_grid", None)
        if self.overlay.isVisible():
            self.overlay.hide()
        elif grid is not None and grid.isVisible():
            grid.close()
        elif self.isFullScreen():
            self.toggle_fullscreen()

    # -- Qt events ---------------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.overlay.isVisible():
            self.overlay.setGeometry(self.view.rect())

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        if urls:
            url = urls[0]
            self.open_source(url.toLocalFile() if url.isLocalFile() else url.toString())
            event.acceptProposedAction()

    def save_settings(self) -> None:
        """Remember the settings, and the source only if one opened (a failed one never is); nothing
        after a mistake on the command line (what was remembered stays)."""
        if self.settings is not None and self.fatal_error is None:
            remembered.save(self.settings, self.engine_config, self.render_config, self.source_spec,
                            self.saveGeometry(), self.recent,
                            {"colorbar": self.colorbar_check.isChecked(), "timecode": self.timecode_check.isChecked()})

    def shutdown(self, timeout: float = 1.2) -> bool:
        """Stop every thread (idempotent); ``True`` when all ended within ``timeout`` seconds."""
        if self._closed:
            return not self.pipeline.running
        self._closed = True
        self._stats_timer.stop()
        self._error_timer.stop()
        return self.pipeline.stop(timeout)

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self._closed:
            self.save_settings()
        self.hide()  # gone at once; the threads are joined behind it
        self.shutdown()
        super().closeEvent(event)
