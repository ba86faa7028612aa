"""The main window: the view, the controls dock, the predictions and spectrum panels, the status bar.

Widgets live on the GUI thread only and never call the model: every change goes to the
:class:`~ui.worker.Pipeline` as a command and applies from the next frame (or, while paused, to
the frame on screen).
"""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from PyQt5.QtCore import QEvent, QObject, QSettings, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import (
    QAction,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSlider,
    QSpinBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from eigencam_live.backends import BACKENDS
from eigencam_live.cam import METHODS
from eigencam_live.engine import DEVICES, PRECISIONS, EngineConfig
from eigencam_live.models import MODELS
from eigencam_live.render import COLORMAPS, VIEWS, RenderConfig

from . import settings as remembered
from .rates import RateMeter
from .shortcuts import SHORTCUTS, shortcut
from .widgets import FrameView, PredictionsPanel, ShortcutsOverlay, SpectrumPanel
from .worker import EngineStatus, Packet, Pipeline

__all__ = ["MainWindow", "default_snapshot_dir"]

_VIEW_LABELS = {"overlay": "Overlay", "side-by-side": "Side by side", "heatmap": "Heatmap only", "original": "Original"}
_BANNER_WARN = "background:#5a4a1a; color:#ffe9b0; padding:6px 10px; border-radius:4px;"
_BANNER_ERROR = "background:#6a2323; color:#ffd9d9; padding:6px 10px; border-radius:4px;"


def _form(parent: QWidget) -> QFormLayout:
    form = QFormLayout(parent)
    form.setVerticalSpacing(4)
    form.setContentsMargins(8, 6, 8, 6)
    return form


def default_snapshot_dir() -> Path:
    return Path.home() / "Pictures" / "eigencam-live"



class _FrameKeys(QObject):
    """Event filter: ← and → (no modifier) go to the window's frame-step shortcuts, not the widget."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if (
            event.type() == QEvent.ShortcutOverride
            and event.key() in (Qt.Key_Left, Qt.Key_Right)
            and event.modifiers() == Qt.NoModifier
        ):
            event.ignore()  # not claimed by the widget: the shortcut fires
            return True
        return False

class MainWindow(QMainWindow):
    """The eigencam-live window.

    Args:
        engine_config: initial engine settings.
        render_config: initial drawing settings.
        source: what to open first (``"demo"``, a camera index, a file, a URL).
        settings: where settings are remembered (``None``: not remembered).
        snapshot_dir: where snapshots and recordings go.
        demo_size: ``(width, height)`` of the demo scene.
        demo_fps: its frame rate.

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
        self.source_spec: str | int = source
        self.last_packet: Packet | None = None
        self.last_error: str | None = None
        self.errors: list[str] = []
        self.paused = False
        self.recording_path: str | None = None
        self.frames_displayed = 0
        self.latencies: deque[float] = deque(maxlen=600)  # ms, capture -> on screen
        self.display_rate = RateMeter()
        self._closed = False

        self.pipeline = Pipeline(engine_config, render_config, demo_size=demo_size, demo_fps=demo_fps, parent=self)
        self._build_ui()
        self._connect_pipeline()
        if settings is not None:
            geometry = remembered.load_geometry(settings)
            if geometry is not None:
                self.restoreGeometry(geometry)
        self._stats_timer = QTimer(self)
        self._stats_timer.timeout.connect(self._update_stats)
        self._stats_timer.start(500)
        self._error_timer = QTimer(self, singleShot=True)
        self._error_timer.timeout.connect(self.error_banner.hide)
        self.pipeline.start(source)
        self.pipeline.find_cameras()

    # -- construction ----------------------------------------------------------------------------
    def _build_ui(self) -> None:
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.warning_banner = QLabel(central)
        self.warning_banner.setStyleSheet(_BANNER_WARN)
        self.warning_banner.setWordWrap(True)
        self.warning_banner.hide()
        self.error_banner = QLabel(central)
        self.error_banner.setStyleSheet(_BANNER_ERROR)
        self.error_banner.setWordWrap(True)
        self.error_banner.hide()
        self.view = FrameView(central)
        self.overlay = ShortcutsOverlay(self.view)
        seek_row = QHBoxLayout()
        self.seek_slider = QSlider(Qt.Horizontal, central)
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
        panel = QWidget(dock)
        col = QVBoxLayout(panel)
        col.setContentsMargins(6, 6, 6, 6)
        col.setSpacing(6)

        src = QGroupBox("Source", panel)
        form = _form(src)
        self.source_combo = QComboBox(src)
        self.source_combo.addItem("Demo scene", "demo")
        self.source_combo.addItem("Open file…", "__file__")
        self.source_combo.addItem("Open URL…", "__url__")
        self.source_combo.activated.connect(self._on_source_chosen)
        self.source_label = QLabel("", src)
        self.source_label.setWordWrap(True)
        form.addRow(self.source_combo)
        form.addRow(self.source_label)
        col.addWidget(src)

        mdl = QGroupBox("Model and Eigen-CAM", panel)
        form = _form(mdl)
        self.model_combo = QComboBox(mdl)
        for name in sorted(MODELS):
            self.model_combo.addItem(name, name)
        self.layer_combo = QComboBox(mdl)
        self.layer_combo.setMinimumContentsLength(18)
        self.layer_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.component_spin = QSpinBox(mdl)
        self.component_spin.setRange(1, 5)
        self.method_combo = QComboBox(mdl)
        for m in METHODS:
            self.method_combo.addItem(m, m)
        self.smoothing_spin = QDoubleSpinBox(mdl)
        self.smoothing_spin.setRange(0.0, 0.95)
        self.smoothing_spin.setSingleStep(0.05)
        self.smoothing_spin.setDecimals(2)
        self.short_side_spin = QSpinBox(mdl)
        self.short_side_spin.setRange(64, 1024)
        self.short_side_spin.setSingleStep(32)
        self.short_side_spin.setSuffix(" px")
        self.short_side_spin.setKeyboardTracking(False)
        self.device_combo = QComboBox(mdl)
        for d in DEVICES:
            self.device_combo.addItem(d, d)
        self.backend_combo = QComboBox(mdl)
        for b in BACKENDS:
            self.backend_combo.addItem(b, b)
        self.backend_combo.setToolTip("auto: ONNX Runtime on the CPU (the network is exported once, then cached), "
                                      "torch on CUDA")
        self.precision_combo = QComboBox(mdl)
        for p in PRECISIONS:
            self.precision_combo.addItem(p, p)
        self.in_use_label = QLabel("—", mdl)
        form.addRow("Model", self.model_combo)
        form.addRow("Layer", self.layer_combo)
        form.addRow("Component", self.component_spin)
        form.addRow("Method", self.method_combo)
        form.addRow("Smoothing", self.smoothing_spin)
        form.addRow("Input (short side)", self.short_side_spin)
        pair = QHBoxLayout()
        pair.addWidget(self.device_combo)
        pair.addWidget(self.backend_combo)
        pair.addWidget(self.precision_combo)
        form.addRow("Device, backend, precision", pair)
        form.addRow("In use", self.in_use_label)
        col.addWidget(mdl)

        drw = QGroupBox("Display", panel)
        form = _form(drw)
        self.view_combo = QComboBox(drw)
        for v in VIEWS:
            self.view_combo.addItem(_VIEW_LABELS.get(v, v), v)
        self.alpha_slider = QSlider(Qt.Horizontal, drw)
        self.alpha_slider.setRange(0, 100)
        self.colormap_combo = QComboBox(drw)
        for c in COLORMAPS:
            self.colormap_combo.addItem(c, c)
        form.addRow("View", self.view_combo)
        form.addRow("Opacity", self.alpha_slider)
        form.addRow("Colormap", self.colormap_combo)
        col.addWidget(drw)

        pred = QGroupBox("Predictions (top 5)", panel)
        self.predictions = PredictionsPanel(pred)
        QVBoxLayout(pred).addWidget(self.predictions)
        col.addWidget(pred)
        spec = QGroupBox("Explained variance", panel)
        self.spectrum = SpectrumPanel(spec)
        QVBoxLayout(spec).addWidget(self.spectrum)
        col.addWidget(spec)

        col.addStretch(1)

        self.toolbar = self._make_actions()

        scroll = QScrollArea(dock)
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(350)
        dock.setWidget(scroll)
        self.addDockWidget(Qt.RightDockWidgetArea, dock)
        self.controls_dock = dock

        self._sync_controls(self.engine_config, self.render_config)
        self.model_combo.activated.connect(lambda _i: self._engine(model=self.model_combo.currentData(), layer=None))
        self.layer_combo.activated.connect(lambda _i: self._engine(layer=self.layer_combo.currentData()))
        self.component_spin.valueChanged.connect(lambda v: self._engine(component=int(v)))
        self.method_combo.activated.connect(lambda _i: self._engine(method=self.method_combo.currentData()))
        self.smoothing_spin.valueChanged.connect(lambda v: self._engine(smoothing=round(float(v), 2)))
        self.short_side_spin.valueChanged.connect(lambda v: self._engine(short_side=int(v)))
        self.device_combo.activated.connect(lambda _i: self._engine(device=self.device_combo.currentData()))
        self.backend_combo.activated.connect(lambda _i: self._engine(backend=self.backend_combo.currentData()))
        self.precision_combo.activated.connect(lambda _i: self._engine(precision=self.precision_combo.currentData()))
        self.view_combo.activated.connect(lambda _i: self._render(view=self.view_combo.currentData()))
        self.alpha_slider.valueChanged.connect(lambda v: self._render(alpha=v / 100.0))
        self.colormap_combo.activated.connect(lambda _i: self._render(colormap=self.colormap_combo.currentData()))

        self.stats_label = QLabel("", self)
        self.statusBar().addPermanentWidget(self.stats_label)
        self.view.setFocus()

    def _make_actions(self) -> QToolBar:
        """One action per row of :data:`~ui.shortcuts.SHORTCUTS`: its keys work anywhere in the
        window, and rows with a button also appear on the toolbar."""
        bar = QToolBar("Inspection", self)
        bar.setObjectName("inspection")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonTextOnly)
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
                bar.widgetForAction(action).setFocusPolicy(Qt.NoFocus)
        self.pause_action = self.shortcut_actions["pause"]
        self.record_action = self.shortcut_actions["record"]
        self.addToolBar(Qt.TopToolBarArea, bar)
        # A spin box with the focus would take ← and → for its text cursor: they step frames instead.
        self._frame_keys = _FrameKeys(self)
        for spin in (self.component_spin, self.smoothing_spin, self.short_side_spin):
            spin.installEventFilter(self._frame_keys)
        return bar

    def _connect_pipeline(self) -> None:
        p = self.pipeline
        p.frame_ready.connect(self._on_frame_ready)
        p.error.connect(self.show_error)
        p.engine_changed.connect(self._on_engine_changed)
        p.layers_ready.connect(self._on_layers)
        p.source_opened.connect(self._on_source_opened)
        p.source_ended.connect(lambda: self.statusBar().showMessage("End of file — ← steps back, drag the slider", 5000))
        p.recording_changed.connect(self._on_recording_changed)
        p.busy.connect(self._on_busy)
        p.cameras_found.connect(self._on_cameras)

    # -- controls -> pipeline ----------------------------------------------------------------------
    def _engine(self, **changes) -> None:
        self.pipeline.reconfigure(**changes)

    def _render(self, **changes) -> None:
        try:
            self.render_config = RenderConfig(**{**self.render_config.__dict__, **changes})
        except Exception as exc:
            self.show_error(str(exc))
            return
        self.pipeline.set_render(self.render_config)

    def _sync_controls(self, ec: EngineConfig, rc: RenderConfig | None = None) -> None:
        widgets = [self.model_combo, self.component_spin, self.method_combo, self.smoothing_spin,
                   self.short_side_spin, self.device_combo, self.backend_combo, self.precision_combo, self.view_combo,
                   self.alpha_slider, self.colormap_combo]
        for w in widgets:
            w.blockSignals(True)
        try:
            self.model_combo.setCurrentIndex(self.model_combo.findData(ec.model))
            self.component_spin.setValue(min(5, ec.component))
            self.method_combo.setCurrentIndex(self.method_combo.findData(ec.method))
            self.smoothing_spin.setValue(float(ec.smoothing))
            self.short_side_spin.setValue(int(ec.short_side))
            self.device_combo.setCurrentIndex(self.device_combo.findData(ec.device))
            self.backend_combo.setCurrentIndex(self.backend_combo.findData(ec.backend))
            self.precision_combo.setCurrentIndex(self.precision_combo.findData(ec.precision))
            if rc is not None:
                self.view_combo.setCurrentIndex(self.view_combo.findData(rc.view))
                self.alpha_slider.setValue(int(round(rc.alpha * 100)))
                self.colormap_combo.setCurrentIndex(self.colormap_combo.findData(rc.colormap))
        finally:
            for w in widgets:
                w.blockSignals(False)

    def _on_source_chosen(self, index: int) -> None:
        data = self.source_combo.itemData(index)
        if data == "__file__":
            path, _ = QFileDialog.getOpenFileName(
                self, "Open a video", str(Path.home()), "Videos (*.mp4 *.mkv *.avi *.mov *.webm *.m4v);;All files (*)"
            )
            if path:
                self.open_source(path)
            else:
                self._select_current_source()
        elif data == "__url__":
            url, ok = QInputDialog.getText(self, "Open a stream", "URL (rtsp://, http://, ...):")
            if ok and url.strip():
                self.open_source(url.strip())
            else:
                self._select_current_source()
        else:
            self.open_source(data)

    def _select_current_source(self) -> None:
        i = self.source_combo.findData(self.source_spec)
        if i >= 0:
            self.source_combo.setCurrentIndex(i)

    def open_source(self, spec: str | int) -> None:
        """Open a new source (the engine's video state is reset; settings stay)."""
        self.source_spec = spec
        self.pipeline.open_source(spec)

    # -- pipeline -> widgets -----------------------------------------------------------------------
    def _on_frame_ready(self) -> None:
        packet = self.pipeline.take()
        if packet is None or self._closed:
            return
        self.view.set_image(packet.image)
        now = time.monotonic()
        self.latencies.append((now - packet.frame.captured) * 1000.0)
        self.display_rate.tick(t=now)
        self.frames_displayed += 1
        self.last_packet = packet
        r = packet.result
        self.predictions.set_predictions(r.predictions, untrained=not (self.status and self.status.trained))
        self.spectrum.set_spectrum(r.explained, r.component)
        if self.seek_widget.isVisible() and not self.seek_slider.isSliderDown():
            self.seek_slider.blockSignals(True)
            self.seek_slider.setValue(packet.frame.index)
            self.seek_slider.blockSignals(False)
            total = self.source_info.frame_count if self.source_info else None
            self.seek_label.setText(f"{packet.frame.index + 1} / {total}  ·  {packet.frame.pts:.2f} s")
        self.frame_shown.emit(packet)

    def _on_engine_changed(self, status: EngineStatus) -> None:
        self.status = status
        self.engine_config = status.config
        self._sync_controls(status.config)
        self.in_use_label.setText(f"{status.device} · {status.backend} · {status.dtype} · "
                                  f"{'trained' if status.trained else 'untrained'}")
        if not status.trained:
            if status.warning:
                text = (
                    f"<b>Untrained network.</b> ImageNet weights for {status.config.model} are not available "
                    "(offline, nothing cached): the heatmaps and labels come from random weights and mean "
                    "nothing. Connect once to cache them, or start with <code>--weights FILE.pth</code>."
                )
            else:
                text = (
                    f"<b>Untrained network</b> ({status.config.model} with <code>--weights none</code>): "
                    "heatmaps and labels come from random weights."
                )
            self.warning_banner.setText(text)
            self.warning_banner.setToolTip(status.warning or "")
            self.warning_banner.show()
        else:
            self.warning_banner.hide()
        self._select_layer(status.layer)

    def _on_layers(self, model: str, layers: list) -> None:
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for name, shape in layers:
            dims = "×".join(str(d) for d in shape)
            self.layer_combo.addItem(f"{name}  ({dims})" if dims else name, name)
        self.layer_combo.blockSignals(False)
        if self.status is not None:
            self._select_layer(self.status.layer)

    def _select_layer(self, layer: str) -> None:
        i = self.layer_combo.findData(layer)
        self.layer_combo.blockSignals(True)
        if i < 0:
            self.layer_combo.insertItem(0, layer, layer)
            i = 0
        self.layer_combo.setCurrentIndex(i)
        self.layer_combo.blockSignals(False)

    def _on_source_opened(self, info) -> None:
        self.source_info = info
        self.error_banner.hide()
        spec = self.source_spec
        i = self.source_combo.findData(spec)
        if i < 0:
            label = f"Camera {spec}" if info.kind == "webcam" else f"{info.kind}: {Path(str(info.name)).name}"
            self.source_combo.insertItem(self.source_combo.count() - 2, label, spec)
            i = self.source_combo.findData(spec)
        self.source_combo.setCurrentIndex(i)
        frames = f", {info.frame_count} frames" if info.frame_count else ""
        self.source_label.setText(f"{info.width}×{info.height} @ {float(info.fps):.2f} fps{frames}")
        seekable = bool(info.seekable and info.frame_count and not info.live)
        self.seek_widget.setVisible(seekable)
        if seekable:
            self.seek_slider.blockSignals(True)
            self.seek_slider.setRange(0, max(0, int(info.frame_count) - 1))
            self.seek_slider.setValue(0)
            self.seek_slider.blockSignals(False)
        self.setWindowTitle(f"eigencam-live — {info.name}")

    def _on_cameras(self, cameras: list) -> None:
        for index in cameras:
            if self.source_combo.findData(index) < 0 and self.source_combo.findData(str(index)) < 0:
                self.source_combo.insertItem(1, f"Camera {index}", index)

    def _on_recording_changed(self, on: bool, path: str) -> None:
        self.recording_path = path if on else None
        self.record_action.setText(shortcut("record").button_text("■ Stop recording" if on else None))
        self.statusBar().showMessage(f"Recording to {path}" if on else f"Recording saved: {path}", 6000)

    def _on_busy(self, what: str) -> None:
        if what:
            self.statusBar().showMessage(what.capitalize())
            if self.last_packet is None:
                self.view.placeholder = what.capitalize()
                self.view.update()
        else:
            self.statusBar().clearMessage()

    def show_error(self, message: str) -> None:
        """Show a one-line error over the view for a few seconds; the app keeps running."""
        self.last_error = message
        self.errors.append(message)
        self.error_banner.setText(f"<b>Error:</b> {message}")
        self.error_banner.show()
        self._error_timer.start(10000)

    def _update_stats(self) -> None:
        lat = list(self.latencies)[-60:]
        latency = f"{np.median(lat):.0f} ms" if lat else "—"
        p = self.pipeline
        state = "  ·  PAUSED" if self.paused else ""
        rec = "  ·  ● REC" if self.recording_path else ""
        self.stats_label.setText(
            f"capture {p.capture_fps:.1f} fps  ·  processing {p.process_rate.rate():.1f} fps "
            f"({p.process_ms:.0f} ms)  ·  display {self.display_rate.rate():.1f} fps  ·  latency {latency}  ·  "
            f"dropped {p.dropped}{state}{rec}"
        )

    # -- inspection --------------------------------------------------------------------------------
    def toggle_pause(self) -> None:
        self.set_paused(not self.paused)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.pipeline.set_paused(paused)
        self.pause_action.setText(shortcut("pause").button_text("Resume" if paused else None))
        self._update_stats()

    def step(self, delta: int = 1) -> None:
        """Pause and show the next frame (``+1``) or, on files, the previous one (``-1``)."""
        if not self.paused:
            self.set_paused(True)
        self.pipeline.step(delta)

    def _on_seek(self, value: int) -> None:
        self.pipeline.seek(value)

    def snapshot(self, folder: str | Path | None = None) -> list[Path]:
        """Save the view (PNG), the raw frame (PNG) and the map (``.npy``, float32 ``(H, W)`` in
        ``[0, 1]``) of the frame on screen; returns the three paths."""
        packet = self.last_packet
        if packet is None:
            self.show_error("no frame to save yet")
            return []
        out = Path(folder) if folder else self.snapshot_dir
        try:
            out.mkdir(parents=True, exist_ok=True)
            stem = f"eigencam-{datetime.now():%Y%m%d-%H%M%S}-f{packet.frame.index:06d}"
            view_path = out / f"{stem}-view.png"
            raw_path = out / f"{stem}-frame.png"
            map_path = out / f"{stem}-map.npy"
            fast = [cv2.IMWRITE_PNG_COMPRESSION, 1]
            if not cv2.imwrite(str(view_path), packet.image, fast) or not cv2.imwrite(str(raw_path), packet.frame.image, fast):
                raise OSError(f"cannot write PNG files into {out}")
            np.save(map_path, packet.result.heatmap.astype(np.float32))
        except OSError as exc:
            self.show_error(f"snapshot failed: {exc}")
            return []
        self.statusBar().showMessage(f"Snapshot saved: {view_path.parent / stem}-*", 6000)
        return [view_path, raw_path, map_path]

    def toggle_recording(self, folder: str | Path | None = None) -> None:
        if self.recording_path:
            self.pipeline.stop_recording()
            return
        out = Path(folder) if folder else self.snapshot_dir
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.show_error(f"cannot record into {out}: {exc}")
            return
        path = out / f"eigencam-{datetime.now():%Y%m%d-%H%M%S}.mp4"
        self.recording_path = str(path)  # optimistic: the worker confirms or reports an error
        self.pipeline.start_recording(path)

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
            self.controls_dock.show()
        else:
            self.controls_dock.hide()
            self.showFullScreen()

    def toggle_help(self) -> None:
        self.overlay.setGeometry(self.view.rect())
        self.overlay.setVisible(not self.overlay.isVisible())
        self.overlay.raise_()

    def escape(self) -> None:
        """Close the help, else leave fullscreen."""
        if self.overlay.isVisible():
            self.overlay.hide()
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
        if self.settings is not None:
            remembered.save(self.settings, self.engine_config, self.render_config, self.source_spec,
                            self.saveGeometry())

    def shutdown(self, timeout: float = 1.8) -> bool:
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
        self.shutdown()
        super().closeEvent(event)
