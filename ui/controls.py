"""The control panel of the main window: source, model and Eigen-CAM, display, predictions and the
spectrum, built onto the window as Qt Designer's ``setupUi`` does (the widgets become the window's
attributes: ``window.model_combo``...), with the tooltips that explain them; and
:class:`ControlsSync`, which keeps the model controls in step with what the engine has in use."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PyQt5.QtCore import QSignalBlocker, Qt
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from eigencam_live.backends import BACKENDS
from eigencam_live.backends.onnx_file import short_name
from eigencam_live.cam import METHODS
from eigencam_live.config import COMPONENT_MAX, STRIDE
from eigencam_live.engine import DEVICES, PRECISIONS, EngineConfig
from eigencam_live.models import DETECTORS, MODELS, model_kind
from eigencam_live.options import layer_tree
from eigencam_live.render import COLORMAPS, TWO_PANEL_VIEWS, VIEWS, RenderConfig, colormap_lut

from . import commands as cmd
from .focus import ComboBox, DoubleSpinBox, Slider, SpinBox
from .settings import weights_for
from .widgets import LayerCombo, PredictionsPanel, SpectrumPanel

__all__ = ["TIPS", "ControlsSync", "build_panel", "natural_key"]

#: Offered in the model box after torchvision's names (any other can be typed).
SUGGESTED_MODELS = ("timm:convnext_tiny", "timm:efficientnet_b0", "timm:vit_small_patch16_224",
                    "examples.efficientnet_lite0:build")

#: The layer filter's hint while it can be typed in.
FILTER_HINT = "filter layers…"
_VIEW_LABELS = {"overlay": "Overlay", "side-by-side": "Side by side / stacked", "stacked": "Stacked", "heatmap": "Heatmap only",
                "original": "Original"}


def _form(parent: QWidget) -> QFormLayout:
    form = QFormLayout(parent)
    form.setVerticalSpacing(4)
    form.setContentsMargins(8, 6, 8, 6)
    return form


def natural_key(name: str) -> list:
    """Sort key that reads digits as numbers: resnet18 < resnet34 < resnet101."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


#: What the controls mean, as tooltips.
TIPS = {
    "model": "The network: pick a torchvision classifier, or type and press Enter: timm:NAME (any timm "
             "classifier, e.g. timm:convnext_tiny), package.module:callable (your own network from a factory, "
             "e.g. mynet:build with mynet.py in the current folder) or the path of an .onnx file. "
             "Loading a model takes a few seconds.",
    "weights": "ImageNet (downloaded once, then cached), none (random weights: maps and labels mean nothing), "
               "or a state_dict file of your own (Load file…). For your own network (a factory) or an ONNX "
               "file, 'as built' keeps the weights it came with.",
    "layer": "The layer whose activations Eigen-CAM decomposes: the network's layers as a tree, with their "
             "type and their output (channels × height × width) for the current input; ★ marks the default. "
             "Later layers: coarser maps of whole objects; earlier ones: finer maps of parts and texture.",
    "score": "Detectors: the lowest score of a box that is listed and drawn.",
    "boxes": "Detectors: draw each box with its class and score.",
    "in_boxes": "Detectors: renormalise the map inside each box (min-max per box) and blank it outside, as "
                "detector tutorials do; off: the plain map.",
    "layer_filter": "Show only the layers whose name or type contains this text (e.g. conv, blocks.11, stages.3); "
                    "Enter uses the first of them.",
    "component": "Which principal component of the layer's activations is shown: 1 explains the most, and "
                 "2, 3... often pick out other objects. Click a bar of the spectrum to choose one too.",
    "method": "How the principal components are found: exact (eigendecomposition of the small Gram matrix), "
              "randomized (a fast randomized SVD for large maps), or auto (chosen by the map's size).",
    "smoothing": "Temporal smoothing of the map in [0, 0.95]: 0 shows each frame's own map, 0.8 blends in "
                 "80 % of the previous map for a steadier picture that lags a little.",
    "short_side": "The network input's short side in pixels (64 to 1024, steps of 32; other values are rounded). "
                  "The whole frame is resized, never cropped. Larger: finer maps, slower frames.",
    "device": "cpu, cuda, or auto (CUDA when there is a GPU).",
    "precision": "fp32, fp16 (CUDA only), bf16, or auto (fp16 on CUDA, fp32 on the CPU).",
    "view": "overlay: the map blended into the frame; side by side: the frame, then the overlay, beside it "
            "or below it, whichever shows them larger in the window (a wide frame stacks); heatmap only; "
            "original.",
    "alpha": "How strongly the map covers the frame in the overlay view.",
    "colormap": "The colours of the map, from low (0) to high (1) attention; the bar at the right of the "
                "picture shows the scale.",
}


def build_panel(w, dock: QWidget) -> QWidget:
    """The panel's widgets, made as attributes of the window ``w``; returns the panel."""
    panel = QWidget(dock)
    col = QVBoxLayout(panel)
    col.setContentsMargins(6, 6, 6, 6)
    col.setSpacing(6)

    src = QGroupBox("Source", panel)
    form = _form(src)
    w.source_combo = ComboBox(src)
    w.source_combo.addItem("Demo clip", "demo")
    w.source_combo.addItem("Open file…", "__file__")
    w.source_combo.addItem("Open folder…", "__folder__")
    w.source_combo.addItem("Open URL…", "__url__")
    w.source_combo.activated.connect(w._on_source_chosen)
    w.source_label = QLabel("", src)
    w.source_label.setWordWrap(True)
    w.loop_check = QCheckBox("Loop files", src)
    w.loop_check.setToolTip("Start a file again from its first frame when it ends")
    form.addRow(w.source_combo)
    form.addRow(w.source_label)  # a row of its own: beside the check box, its second line was cut off
    form.addRow(w.loop_check)
    col.addWidget(src)

    mdl = QGroupBox("Model and Eigen-CAM", panel)
    form = _form(mdl)
    w.model_combo = ComboBox(mdl)
    w.model_combo.setEditable(True)  # timm:NAME, package.module:callable or a .onnx path, typed
    w.model_combo.setInsertPolicy(QComboBox.NoInsert)
    # the names that match in a list under the box, not the first one completed into it: "resnet1" + Enter
    # loaded resnet18 without a word, where resnet101 and resnet152 match too (a trial)
    w.model_combo.completer().setCompletionMode(QCompleter.PopupCompletion)
    w.model_combo.lineEdit().setPlaceholderText("name, timm:NAME, module:factory")
    for name in sorted(MODELS, key=natural_key) + list(DETECTORS) + list(SUGGESTED_MODELS):
        w.model_combo.addItem(name, name)
    w.model_combo.setMaxVisibleItems(20)
    # as narrow as a short name (its longest, a detector's, held the panel at 460 px on a 1000 px
    # window); its list opens as wide as the names
    w.model_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    w.model_combo.setMinimumContentsLength(12)
    w.model_combo.view().setMinimumWidth(w.model_combo.view().sizeHintForColumn(0) + 24)
    w.weights_combo = ComboBox(mdl)
    w.weights_combo.addItem("ImageNet", "imagenet")
    w.weights_combo.addItem("none (random)", "none")
    w.weights_combo.addItem("Load file…", "__file__")
    w.layer_combo = LayerCombo(mdl)
    w.layer_combo.setMinimumContentsLength(14)
    w.layer_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    w.layer_combo.setMaxVisibleItems(18)
    w.layer_filter = QLineEdit(mdl)
    w.layer_filter.setPlaceholderText(FILTER_HINT)
    w.layer_filter.setClearButtonEnabled(True)
    w.component_spin = SpinBox(mdl)
    w.component_spin.setRange(1, COMPONENT_MAX)  # the spectrum shows the first five; any can be shown
    w.component_spin.setKeyboardTracking(False)  # a typed number applies on Enter, not at each digit
    w.method_combo = ComboBox(mdl)
    for m in METHODS:
        w.method_combo.addItem(m, m)
    w.smoothing_spin = DoubleSpinBox(mdl)
    w.smoothing_spin.setRange(0.0, 0.95)
    w.smoothing_spin.setSingleStep(0.05)
    w.smoothing_spin.setDecimals(2)
    w.smoothing_spin.setKeyboardTracking(False)
    w.short_side_spin = SpinBox(mdl)
    w.short_side_spin.setRange(64, 1024)
    w.short_side_spin.setSingleStep(32)
    w.short_side_spin.setSuffix(" px")
    w.short_side_spin.setKeyboardTracking(False)
    w.device_combo = ComboBox(mdl)
    for d in DEVICES:
        w.device_combo.addItem(d, d)
    w.backend_combo = ComboBox(mdl)
    for b in BACKENDS:
        w.backend_combo.addItem(b, b)
    w.backend_combo.setToolTip("auto: ONNX Runtime on the CPU (the network is exported once, then cached), "
                                  "torch on CUDA")
    w.precision_combo = ComboBox(mdl)
    for p in PRECISIONS:
        w.precision_combo.addItem(p, p)
    w.in_use_label = QLabel("—", mdl)
    w.in_use_label.setWordWrap(True)
    form.addRow("Model", w.model_combo)
    form.addRow("Weights", w.weights_combo)
    # the filter beside the label, the box below it across the panel: room for a layer's name and
    # shape (_blocks.15._project_conv lost its block's number beside the label)
    form.addRow("Layer", w.layer_filter)
    form.addRow(w.layer_combo)
    form.addRow("Component", w.component_spin)
    form.addRow("Method", w.method_combo)
    form.addRow("Smoothing", w.smoothing_spin)
    form.addRow("Input (short side)", w.short_side_spin)
    w.score_spin = DoubleSpinBox(mdl)
    w.score_spin.setRange(0.0, 1.0)
    w.score_spin.setSingleStep(0.05)
    w.score_spin.setDecimals(2)
    w.score_spin.setKeyboardTracking(False)
    w.score_label = QLabel("Box score ≥", mdl)
    form.addRow(w.score_label, w.score_spin)
    pair = QHBoxLayout()
    pair.addWidget(w.device_combo)
    pair.addWidget(w.backend_combo)
    pair.addWidget(w.precision_combo)
    form.addRow(QLabel("Device, backend, precision", mdl))
    form.addRow(pair)
    form.addRow("In use", w.in_use_label)
    col.addWidget(mdl)

    drw = QGroupBox("Display", panel)
    form = _form(drw)
    w.view_combo = ComboBox(drw)
    for v in VIEWS:
        if v != "stacked":  # "Side by side" stands for both two-panel layouts: the window picks the one that fits
            w.view_combo.addItem(_VIEW_LABELS.get(v, v), v)
    w.alpha_slider = Slider(Qt.Horizontal, drw)
    w.alpha_slider.setRange(0, 100)
    w.alpha_label = QLabel("", drw)
    w.alpha_label.setMinimumWidth(w.alpha_label.fontMetrics().horizontalAdvance("100 %") + 4)
    w.alpha_label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
    w.alpha_slider.valueChanged.connect(lambda v: w.alpha_label.setText(f"{v} %"))
    w.colormap_combo = ComboBox(drw)
    for c in COLORMAPS:
        w.colormap_combo.addItem(c, c)
    form.addRow("View", w.view_combo)
    opacity = QHBoxLayout()
    opacity.addWidget(w.alpha_slider, 1)
    opacity.addWidget(w.alpha_label)
    form.addRow("Opacity", opacity)
    colormap_row = QHBoxLayout()
    colormap_row.addWidget(w.colormap_combo, 1)
    form.addRow("Colormap", colormap_row)
    w.colorbar_check = QCheckBox("Colour bar", drw)
    w.colorbar_check.setToolTip("The colormap's scale at the right of the picture (0 = low, 1 = high "
                                   "attention; each frame's map spans 0 to 1), also in snapshots")
    w.colorbar_check.setChecked(True)
    w.colorbar_check.toggled.connect(
        lambda _on: w.view.set_colorbar(w.colorbar_shown()))
    colormap_row.addWidget(w.colorbar_check)
    w.timecode_check = QCheckBox("Timecode", drw)
    w.timecode_check.setToolTip("Stamp the frame number (from 1) and time at the bottom left of what is "
                                   "shown, recorded and saved")
    w.timecode_check.toggled.connect(lambda on: w.pipeline.send(cmd.SetTimecode(bool(on))))
    colormap_row.addWidget(w.timecode_check)
    w.boxes_row = QWidget(drw)
    boxes_row = QHBoxLayout(w.boxes_row)
    boxes_row.setContentsMargins(0, 0, 0, 0)
    w.boxes_check = QCheckBox("Boxes", w.boxes_row)
    w.in_boxes_check = QCheckBox("Map inside boxes only", w.boxes_row)
    boxes_row.addWidget(w.boxes_check)
    boxes_row.addWidget(w.in_boxes_check, 1)
    form.addRow(w.boxes_row)
    col.addWidget(drw)

    # The results sit under the settings, outside their scrolling (the window pins them at the
    # dock's foot where the screen is short): a trial on a 1366x768 laptop saw 2 of the 5
    # predictions and no explained variance without scrolling, a detector's none at 1280x720.
    w.results_panel = results = QWidget(dock)
    res = QVBoxLayout(results)
    res.setContentsMargins(6, 0, 6, 6)
    res.setSpacing(6)
    w.predictions_title = "Predictions (top 5)"  # (a detector's: how many boxes it shows of how many, each frame)
    w.predictions_box = QGroupBox(w.predictions_title, results)
    w.predictions = PredictionsPanel(w.predictions_box)
    QVBoxLayout(w.predictions_box).addWidget(w.predictions)
    res.addWidget(w.predictions_box)
    # (what 100 % is: the bars' tooltip; a line of its own pushed the bars out of a 1000 px window
    # under a detector's rows)
    w.spectrum_box = QGroupBox("Explained variance (click a bar)", results)
    w.spectrum = SpectrumPanel(w.spectrum_box)
    w.spectrum.component_clicked.connect(w.component_spin.setValue)
    QVBoxLayout(w.spectrum_box).addWidget(w.spectrum)
    res.addWidget(w.spectrum_box)

    col.addStretch(1)
    return panel



def device_row(config: EngineConfig, cuda: bool, **change: str) -> dict[str, str]:
    """A pick in the device row (``device=``, ``backend=`` or ``precision=``) with what must follow
    it. ONNX Runtime runs on the CPU in fp32: picking it sets a bf16 or fp16 precision back to auto
    and a CUDA device (``cuda``: the one ``auto`` finds) to the CPU; picking bf16, fp16 or CUDA while
    it is chosen sets the backend back to auto (torch, then). A trial: the pick was refused with a
    banner and the box went back, so two picks had to be made in the one order that works."""
    new = replace(config, **change)
    on_gpu = new.device == "cuda" or (new.device == "auto" and cuda)
    if new.backend == "onnxruntime":
        if "backend" in change:
            if new.precision in ("bf16", "fp16"):
                change["precision"] = "auto"
            if on_gpu:
                change["device"] = "cpu"
        elif new.precision in ("bf16", "fp16") or on_gpu:
            change["backend"] = "auto"
    return change


def weights_name(model: str, weights: str) -> str:
    """What ``weights`` are for ``model``: ``imagenet`` is a factory's, an ONNX or a YOLO file's
    own weights (``as built``) and a detector's COCO training."""
    if weights != "imagenet":
        return weights
    return {"factory": "as built", "onnx": "as built", "yolo": "as built", "detector": "COCO"}.get(model_kind(model), weights)


class ControlsSync:
    """Keeping the model and Eigen-CAM controls in step with the engine: a model chosen or typed, the
    controls set to the settings in use (signals blocked), the weights box, and the layer list (a
    tree with types and shapes, the default starred, filtered). A mixin of
    :class:`~ui.window.MainWindow`, whose widgets and state it uses."""

    def _choose_model(self, model: str | None) -> None:
        """A model picked from the list or typed (``timm:NAME``, ``module:factory``, an ONNX path)."""
        model = (model or "").strip()
        if model and model != self.engine_config.model:
            # a layer, weights, a normalisation and labels typed for the last network are not this one's
            # (an ONNX file of uint8 pixels or a module with its own mean and std refuses one; another
            # number of classes refuses the labels, and the app has no box to take them back)
            own = {key: None for key in ("mean", "std", "labels") if getattr(self.engine_config, key) is not None}
            self._engine(model=model, layer=None, weights=weights_for(model, self.engine_config.weights), **own)
        # the keys go back to the picture: Space, S, R... were typed into the name after Enter
        self.view.setFocus()

    def _device_pick(self, key: str, value: str) -> None:
        """A pick in the device row, with what must follow it (:func:`device_row`), said in the status
        bar where another box of the row changes too (a trial: it changed without a word)."""
        change = device_row(self.engine_config, torch.cuda.is_available(), **{key: value})
        also = [f"{k} set to {v}" for k, v in change.items() if k != key]
        if also:
            self.statusBar().showMessage(f"{key} {value}: {', '.join(also)} (they do not go together)", 8000)
        self._engine(**change)

    def _model_typed(self) -> None:
        """Enter in the Model box: a listed model's label (an ONNX file's name alone) stands for its
        whole string (a trial: Enter on "net.onnx", as the box showed it, said no such file)."""
        text = self.model_combo.currentText().strip()
        i = self.model_combo.currentIndex()
        i = i if i >= 0 and self.model_combo.itemText(i) == text else self.model_combo.findText(text)
        self._choose_model(self.model_combo.itemData(i) if i >= 0 else text)

    def _short_side(self, value: int) -> None:
        """The input's short side as the network takes it, a multiple of the stride: 1000 typed
        is 992, and the box says so (it said 1000)."""
        side = max(2 * STRIDE, round(value / STRIDE) * STRIDE)
        if side != value:
            with QSignalBlocker(self.short_side_spin):
                self.short_side_spin.setValue(side)
        self._engine(short_side=side)

    def colorbar_shown(self) -> np.ndarray | None:
        """The colour bar's ``(256, 3)`` lookup table where one is drawn (ticked, and a map is
        shown: not in the original view), else ``None``."""
        if not self.colorbar_check.isChecked() or self.render_config.view == "original":
            return None
        return colormap_lut(self.render_config.colormap)

    def _sync_controls(self, ec: EngineConfig, rc: RenderConfig | None = None) -> None:
        widgets = [self.model_combo, self.weights_combo, self.component_spin, self.method_combo, self.smoothing_spin,
                   self.short_side_spin, self.device_combo, self.backend_combo, self.precision_combo, self.view_combo,
                   self.alpha_slider, self.colormap_combo, self.score_spin, self.boxes_check, self.in_boxes_check]
        for w in widgets:
            w.blockSignals(True)
        try:
            if self.model_combo.findData(ec.model) < 0:  # typed or opened: listed from now on
                label = Path(ec.model).name if ec.model.lower().endswith(".onnx") else ec.model
                self.model_combo.addItem(label, ec.model)
                view = self.model_combo.view()  # the list as wide as its names, this one's too
                view.setMinimumWidth(max(view.minimumWidth(), view.sizeHintForColumn(0) + 24))
            self.model_combo.setCurrentIndex(self.model_combo.findData(ec.model))
            self.model_combo.lineEdit().setCursorPosition(0)  # a long name shown from its start
            kind = model_kind(ec.model)  # a factory's or an ONNX file's weights are their own
            pretrained = weights_name(ec.model, "imagenet")
            self.weights_combo.setItemText(self.weights_combo.findData("imagenet"), "ImageNet" if pretrained == "imagenet" else pretrained)
            status = self.status  # what was loaded knows (a factory's detector); else the name says
            detector = status.detector if status is not None and status.config.model == ec.model else kind in ("detector", "yolo")
            self.score_spin.setValue(float(ec.score))
            # a detector's rows, shown for detectors only: a classifier's panel keeps the spectrum in view
            for widget in (self.score_label, self.score_spin, self.boxes_row):
                widget.setVisible(detector)
            self._select_weights(ec.weights)
            self.component_spin.setValue(ec.component)
            self.method_combo.setCurrentIndex(self.method_combo.findData(ec.method))
            self.smoothing_spin.setValue(float(ec.smoothing))
            fixed = status.fixed_input if status is not None and status.config.model == ec.model else None
            # a network held to one size: its size shown, not a short side it does not use
            side = int(min(fixed) if fixed else ec.short_side)
            self.short_side_spin.setRange(min(64, side), max(1024, side))  # a 1280 YOLO export's shown, not 1024
            self.short_side_spin.setValue(side)
            self.short_side_spin.setSuffix(" px (fixed)" if fixed else " px")
            self.short_side_spin.setEnabled(fixed is None)  # 320 typed for a 224x224 network did nothing
            self.short_side_spin.setToolTip(f"{Path(ec.model).name} takes {fixed[1]}x{fixed[0]} input, whatever the "
                                            "frame: each frame is resized to it" if fixed else TIPS["short_side"])
            self.device_combo.setCurrentIndex(self.device_combo.findData(ec.device))
            self.backend_combo.setCurrentIndex(self.backend_combo.findData(ec.backend))
            self.precision_combo.setCurrentIndex(self.precision_combo.findData(ec.precision))
            if rc is not None:  # one entry for both two-panel layouts: the window picks the one that fits
                self.view_combo.setCurrentIndex(self.view_combo.findData(
                    TWO_PANEL_VIEWS[0] if rc.view in TWO_PANEL_VIEWS else rc.view))
                self.alpha_slider.setValue(int(round(rc.alpha * 100)))
                self.alpha_label.setText(f"{self.alpha_slider.value()} %")
                self.colormap_combo.setCurrentIndex(self.colormap_combo.findData(rc.colormap))
                self.boxes_check.setChecked(rc.boxes)
                self.in_boxes_check.setChecked(rc.in_boxes)
        finally:
            for w in widgets:
                w.blockSignals(False)

    def _on_weights_chosen(self, index: int) -> None:
        data = self.weights_combo.itemData(index)
        self._select_weights(self.engine_config.weights)  # until the worker says what is in use
        if data == "__file__":
            path, _ = QFileDialog.getOpenFileName(self, "Load weights (a state_dict)", self._last_folder,
                                                  "PyTorch weights (*.pth *.pt);;All files (*)")
            if path:
                self._last_folder = str(Path(path).parent)
                self._engine(weights=path)
        else:
            self._engine(weights=data)

    def _select_weights(self, weights: str) -> None:
        i = self.weights_combo.findData(weights)
        if i < 0:
            self.weights_combo.insertItem(2, f"file: {Path(weights).name}", weights)
            i = self.weights_combo.findData(weights)
        self.weights_combo.setCurrentIndex(i)

    def _on_layers(self, model: str, layers: list) -> None:
        """The layer list as a tree (children indented under their container), each with its type
        and its map's shape for the current input; the model's default starred."""
        default = self.status.default_layer if self.status is not None else None
        if model != getattr(self, "_layers_model", model):  # another network: the filter was for the last one's names
            self.layer_filter.clear()  # (signals on: its clear button goes with its text)
        self._layers_model = model
        self.layers = list(layers)  # for compare_layers
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for depth, layer in layer_tree(layers):
            dims = "×".join(str(d) for d in layer.shape)
            star = "★ " if layer.name == default else ""
            shown = short_name(layer.name)  # an ONNX node's, as the tiles and the closed box show it (a trial: two names)
            self.layer_combo.add_layer(f"{'   ' * depth}{star}{shown}   {dims}  {layer.kind}".rstrip(), layer.name,
                                       f"{star}{shown}", dims, layer.kind)
            self.layer_combo.setItemData(self.layer_combo.count() - 1, f"{layer.name}: {layer.kind}, "
                                         f"{dims or '?'}{' (the default)' if star else ''}", Qt.ToolTipRole)
        if not layers:  # no network could be built (a review: "loading…" stayed for good)
            self.layer_combo.addItem("no network")
        self.layer_combo.blockSignals(False)
        self.layer_combo.setEnabled(bool(layers))
        self.layer_filter.setEnabled(bool(layers))
        self.layer_filter.setPlaceholderText(FILTER_HINT if layers else "")
        if self.status is not None:
            self._select_layer(self.status.layer)
        self._filter_layers(self.layer_filter.text())
        view = self.layer_combo.view()  # the popup as wide as its longest line, the combo as it was
        view.setMinimumWidth(min(view.sizeHintForColumn(0) + 24, 700))
        self._fit_controls()

    def _layers_pending(self) -> None:
        """A model is loading: the last one's layers are not its (a trial: the box showed the last
        model's layer all the while). The box says so until the list comes, the new model's, or the
        last one's again where the load failed."""
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItem("loading…")
        self.layer_combo.blockSignals(False)
        self.layer_combo.setEnabled(False)
        self.layer_filter.setEnabled(False)
        self.layer_filter.setPlaceholderText("")  # (its hint looked as it does when it can be typed in)

    def _filter_layers(self, text: str) -> None:
        """Hide the layers whose name and type do not contain ``text`` (the one in use stays)."""
        view, needle = self.layer_combo.view(), text.strip().lower()
        for i in range(self.layer_combo.count()):
            shown = not needle or needle in self.layer_combo.itemText(i).lower() or i == self.layer_combo.currentIndex()
            view.setRowHidden(i, not shown)

    def _pick_filtered_layer(self) -> None:
        """Enter in the filter: the layer it names exactly, else the first layer it shows other
        than the one in use, is used (one match: that one); with none, the status bar says so (a
        trial: a list that opened on the layer in use alone said nothing). (A trial: "_swish" typed
        whole picked "_blocks.0._swish", the first to contain it.) A layer picked gives the keys
        back to the picture (a trial: H and F were typed into the filter)."""
        needle = self.layer_filter.text().strip().lower()
        combo = self.layer_combo
        exact = [i for i in range(combo.count()) if needle and needle in (
            str(combo.itemData(i)).lower(), short_name(str(combo.itemData(i))).lower())]
        if exact:
            if exact[0] != combo.currentIndex():
                combo.setCurrentIndex(exact[0])
                combo.activated.emit(exact[0])
            self.view.setFocus()
            return
        found = [i for i in range(combo.count()) if needle and needle in combo.itemText(i).lower()]
        other = [i for i in found if i != combo.currentIndex()]
        if not other:
            typed = self.layer_filter.text().strip()
            self.statusBar().showMessage(f"only the layer in use matches “{typed}”" if found else
                                         f"no layer's name or type contains “{typed}”", 5000)
            return
        combo.setCurrentIndex(other[0])
        combo.activated.emit(other[0])  # as a click in the list: applied
        self.view.setFocus()

    def _select_layer(self, layer: str) -> None:
        i = self.layer_combo.findData(layer)
        self.layer_combo.blockSignals(True)
        if i < 0:
            self.layer_combo.insertItem(0, layer, layer)
            i = 0
        self.layer_combo.setCurrentIndex(i)
        self.layer_combo.blockSignals(False)
        self.layer_combo.sync_tip()  # (its signal was held)

