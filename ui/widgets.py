"""Display widgets: the predictions and spectrum panels, the shortcuts overlay, the seek slider, the
layer box and the settings' scroll area (the frame view is in :mod:`ui.frame_view`)."""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import QEvent, QRectF, QSize, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PyQt5.QtWidgets import (
    QScrollArea,
    QSizePolicy,
    QSlider,
    QStyle,
    QStyleOptionComboBox,
    QStyleOptionSlider,
    QStylePainter,
    QWidget,
)

from eigencam_live.backends.onnx_file import short_name

from .focus import ComboBox, wheeled
from .shortcuts import SHORTCUTS

__all__ = ["LayerCombo", "PredictionsPanel", "SeekSlider", "SettingsScroll", "ShortcutsOverlay", "SpectrumPanel",
           "elide_name"]


class SettingsScroll(QScrollArea):
    """The settings' scroll area: as tall as the settings where there is room, shorter (and
    scrolling) where there is not, so that what sits under it (the results) stays in view."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Maximum)  # never taller than its hint

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        inner = self.widget()
        tall = inner.sizeHint().height() if inner is not None else 0
        return QSize(super().sizeHint().width(), tall + 2 * self.frameWidth())

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        wheeled(self)  # the panel scrolls: a focused control it brings under the pointer does not take the wheel
        super().wheelEvent(event)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if obj is self.widget() and event.type() == QEvent.LayoutRequest:
            self.updateGeometry()  # a row shown or hidden (a detector's): the hint follows
        return super().eventFilter(obj, event)


def elide_name(fm: QFontMetrics, name: str, width: int, *, compact: bool = False) -> str:
    """``name`` in ``width`` pixels: whole where it fits, else its end, which names the block (an
    ONNX node's first shortened: its end alone was ``…_output_0`` for every layer). ``compact``: an
    ONNX node's shortened always (names side by side then read alike: a trial's tiles mixed
    ``features.0.2/HardSwish`` with ``/features/features.1/block/block.1/Mul_output_0``)."""
    name = short_name(name) if compact else name
    if fm.horizontalAdvance(name) <= width:
        return name
    return fm.elidedText(short_name(name), Qt.ElideLeft, max(width, 0))


class PredictionsPanel(QWidget):
    """Top-k labels with probability bars."""

    #: Said above the labels of an untrained network: its top-5 are noise, often at 100 %.
    UNTRAINED = "untrained: these labels mean nothing"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.predictions: list[tuple[str, float]] = []
        self.placeholder = "no frame yet"
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.untrained = False
        self.scores = False  # a detector's box scores (0.87, as the boxes' tags and the score box say), not %

    #: Five rows of 22 px; an untrained network's warning takes the fifth label's place, so the
    #: panel keeps its height (a sixth row pushed the spectrum below a 1000 px tall window's edge).
    HEIGHT = 114

    @property
    def untrained(self) -> bool:
        """Whether the warning that the labels mean nothing heads them (in the last label's place)."""
        return self._untrained

    @untrained.setter
    def untrained(self, value: bool) -> None:
        self._untrained = bool(value)
        self.setFixedHeight(self.HEIGHT)

    #: The rows shown (the most likely, or a detector's best boxes).
    ROWS = 5

    def set_predictions(self, predictions: list[tuple[str, float]], untrained: bool = False) -> None:
        self.predictions = list(predictions)[: self.ROWS]
        self.untrained = untrained
        self.update()

    def clear(self, placeholder: str) -> None:
        """No labels, ``placeholder`` instead (e.g. while a model loads: the old labels are not its)."""
        self.predictions = []
        self.placeholder = placeholder
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(280, self.height())

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        row = 22
        w = self.width()
        pal = self.palette()
        if not self.predictions:
            p.setPen(pal.color(pal.Disabled, pal.WindowText))
            p.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self.placeholder)
            p.end()
            return
        top = 2
        if self.untrained:
            p.setPen(QColor(255, 200, 90))
            f = QFont(p.font())
            f.setBold(True)
            p.setFont(f)
            note = p.fontMetrics().elidedText("⚠ " + self.UNTRAINED, Qt.ElideRight, w)
            p.drawText(QRectF(0, 0, w, row), Qt.AlignVCenter | Qt.AlignLeft, note)
            p.setFont(QFont(self.font()))
            top += row
        bar_w = max(60, int(w * 0.38))
        for i, (label, prob) in enumerate(self.predictions[: self.ROWS - 1] if self.untrained else self.predictions):
            y = top + i * row
            p.fillRect(w - bar_w - 52, y + 5, bar_w, row - 10, QColor(70, 72, 78))
            colour = QColor(150, 150, 150) if self.untrained else QColor(80, 160, 255)
            p.fillRect(w - bar_w - 52, y + 5, int(bar_w * max(0.0, min(1.0, prob))), row - 10, colour)
            p.setPen(pal.color(pal.WindowText))
            metrics = p.fontMetrics()
            text = metrics.elidedText(label, Qt.ElideRight, w - bar_w - 60)
            p.drawText(QRectF(0, y, w - bar_w - 58, row), Qt.AlignVCenter | Qt.AlignLeft, text)
            number = f"{prob:.2f}" if self.scores else f"{prob * 100:.1f}%"  # a box's score as on its tag
            p.drawText(QRectF(w - 48, y, 48, row), Qt.AlignVCenter | Qt.AlignRight, number)
        p.end()


class SpectrumPanel(QWidget):
    """Explained variance of the first five components as bars (the first four and the chosen one
    when it is beyond them); the chosen one highlighted; a click on a bar chooses its component.

    Signals:
        component_clicked(int): the 1-based component whose bar was clicked.
    """

    component_clicked = pyqtSignal(int)
    N = 5

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.explained = np.zeros(0, np.float32)
        self.component = 1
        self.setMinimumHeight(88)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.setCursor(Qt.PointingHandCursor)
        self.setToolTip("Share of the layer's activation energy (the squared sum of all its values, all "
                        "components together = 100 %) that each principal component explains. "
                        "Click a bar to show that component.")

    def shown(self) -> list[int]:
        """The 1-based components of the five slots: 1 to 5, or 1 to 4 and the chosen one."""
        return [*range(1, self.N), max(self.N, self.component)]

    def component_at(self, x: float) -> int:
        """The 1-based component whose slot holds ``x`` (widget pixels)."""
        return self.shown()[int(min(self.N - 1, max(0, x // (self.width() / self.N))))]

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if event.button() == Qt.LeftButton:
            k = self.component_at(event.pos().x())
            if k <= max(1, len(self.explained)):
                self.component_clicked.emit(k)
        super().mousePressEvent(event)

    def set_spectrum(self, explained: np.ndarray, component: int) -> None:
        """``explained``: every component's share the result holds (at least five, and up to the
        chosen one)."""
        self.explained = np.asarray(explained, np.float32).ravel()
        self.component = int(component)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(280, 100)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        pal = self.palette()
        w, h = self.width(), self.height()
        shown = self.shown()
        known = [float(self.explained[k - 1]) if k <= len(self.explained) else None for k in shown]
        label_h, margin = 18, 18
        slot = w / self.N
        bar_h = h - label_h - margin
        p.setPen(QPen(QColor(90, 92, 98), 1))
        p.drawLine(0, margin + bar_h, w, margin + bar_h)
        # Bars relative to the largest component, so small spectra stay readable; labels give the %.
        top = max([v for v in known if v is not None] + [1e-6])
        for i, k in enumerate(shown):
            value = known[i] or 0.0
            x = i * slot + slot * 0.18
            bw = slot * 0.64
            bh = (bar_h - 16) * max(0.0, min(1.0, value / top))
            chosen = k == self.component
            colour = QColor(255, 170, 40) if chosen else QColor(100, 130, 170)
            p.fillRect(QRectF(x, margin + bar_h - bh, bw, bh), colour)
            p.setPen(pal.color(pal.WindowText))
            f = QFont(p.font())
            f.setBold(chosen)
            p.setFont(f)
            if known[i] is not None:
                p.drawText(QRectF(i * slot, margin + bar_h - bh - 16, slot, 16), Qt.AlignCenter, f"{value * 100:.0f}%")
            gap = "… " if k > i + 1 else ""  # components skipped before it
            p.drawText(QRectF(i * slot, margin + bar_h + 1, slot, label_h), Qt.AlignCenter, f"{gap}PC{k}")
        p.end()


class ShortcutsOverlay(QWidget):
    """A translucent card listing the keyboard shortcuts (:data:`ui.shortcuts.SHORTCUTS`), over the view.

    The card is sized from the text it holds, and the font shrinks until the card fits the view:
    nothing is cut, however small the window.
    """

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.rows = [(row.label, row.help) for row in SHORTCUTS]
        self.setAttribute(Qt.WA_TransparentForMouseEvents, True)
        self.hide()

    def card_layout(self) -> tuple[QFont, QFont, QRectF, float, float]:
        """``(font, bold font, card, key column width, row height)`` that fit this widget."""
        base = QFont(self.font())
        size = base.pointSizeF() * 1.15
        while True:
            f = QFont(base)
            f.setPointSizeF(size)
            bold = QFont(f)
            bold.setBold(True)
            plain, strong = QFontMetrics(f), QFontMetrics(bold)
            key_w = max(strong.horizontalAdvance(key) for key, _ in self.rows) + 8
            text_w = max(plain.horizontalAdvance(what) for _, what in self.rows) + 8
            row = strong.height() + 8
            card_w = max(key_w + text_w + 56, strong.horizontalAdvance("Keyboard shortcuts") + 40)
            card_h = row * (len(self.rows) + 1) + 24
            if (card_w <= self.width() - 8 and card_h <= self.height() - 8) or size <= 6:
                break
            size -= 0.5
        card = QRectF((self.width() - card_w) / 2, (self.height() - card_h) / 2, card_w, card_h)
        return f, bold, card, float(key_w), float(row)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        p.fillRect(self.rect(), QColor(0, 0, 0, 110))
        f, bold, card, key_w, row = self.card_layout()
        p.setBrush(QColor(30, 32, 36, 235))
        p.setPen(QPen(QColor(90, 92, 98), 1))
        p.drawRoundedRect(card, 10, 10)
        p.setPen(QColor(235, 235, 240))
        p.setFont(bold)
        p.drawText(QRectF(card.x(), card.y() + 8, card.width(), row), Qt.AlignCenter, "Keyboard shortcuts")
        for i, (key, what) in enumerate(self.rows):
            y = card.y() + 12 + row * (i + 1)
            p.setFont(bold)
            p.setPen(QColor(255, 190, 80))
            p.drawText(QRectF(card.x() + 16, y, key_w, row), Qt.AlignVCenter | Qt.AlignRight, key)
            p.setFont(f)
            p.setPen(QColor(225, 225, 230))
            p.drawText(QRectF(card.x() + 16 + key_w + 24, y, card.width() - key_w - 40, row),
                       Qt.AlignVCenter | Qt.AlignLeft, what)
        p.end()


class SeekSlider(QSlider):
    """A horizontal slider that jumps to where it is clicked (QSlider pages by 10 frames)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Horizontal, parent)

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if event.button() == Qt.LeftButton:
            opt = QStyleOptionSlider()
            self.initStyleOption(opt)
            handle = self.style().subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderHandle, self)
            if not handle.contains(event.pos()):
                groove = self.style().subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderGroove, self)
                span = max(1, groove.width() - handle.width())
                x = event.pos().x() - groove.x() - handle.width() // 2
                self.setValue(QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), x, span))
        super().mousePressEvent(event)


class LayerCombo(ComboBox):
    """The layer box. Its popup lists the layer tree; the closed box shows the layer in use as
    ``★ name   C×H×W  Type`` without the tree's indent, the name shortened at its front where the
    box is narrow (then the type dropped), so the shape stays in sight (long ONNX node names and
    ``encoder.layers.encoder_layer_23`` pushed it out) and so does the name's end, the block it
    names (cut in its middle, ``_blocks.15._project_conv`` lost its number). Its tooltip names the
    layer in full. :meth:`add_layer` gives each item its parts."""

    PARTS = Qt.UserRole + 1

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._help = ""
        self.currentIndexChanged.connect(lambda _i: self.sync_tip())

    def setToolTip(self, text: str) -> None:  # noqa: N802 (Qt API) - the help; the layer in use is named above it
        self._help = text
        self.sync_tip()

    def sync_tip(self) -> None:
        layer = self.currentData(Qt.ToolTipRole) if self.currentIndex() >= 0 else None
        super().setToolTip(f"In use: {layer}\n\n{self._help}".strip() if layer else self._help)

    def add_layer(self, text: str, name: str, label: str, shape: str, kind: str) -> None:
        """An item: ``text`` in the popup, ``name`` its data, ``label`` (``★ name``), ``shape`` and
        ``kind`` what the closed box fits."""
        self.addItem(text, name)
        self.setItemData(self.count() - 1, (label, shape, kind), self.PARTS)

    def closed_text(self, width: int) -> str:
        """What the closed box shows of the current item in ``width`` pixels."""
        parts = self.currentData(self.PARTS)
        if not parts:
            return self.currentText()
        label, shape, kind = parts
        fm = self.fontMetrics()
        tails = [t for t in (f"   {shape}  {kind}".rstrip(), f"   {shape}") if t.strip()] or [""]
        for tail in tails:  # the type goes first where the name would be cut below ten characters
            room = width - fm.horizontalAdvance(tail)
            if room >= min(fm.horizontalAdvance(label), fm.horizontalAdvance("M" * 10)):
                break
        if fm.horizontalAdvance(label) <= room:
            return label + tail
        star = "★ " if label.startswith("★ ") else ""  # the default's mark stays in sight too
        return star + elide_name(fm, label[len(star):], room - fm.horizontalAdvance(star)) + tail

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.CC_ComboBox, option)
        field = self.style().subControlRect(QStyle.CC_ComboBox, option, QStyle.SC_ComboBoxEditField, self)
        option.currentText = self.closed_text(field.width() - 4)
        painter.drawControl(QStyle.CE_ComboBoxLabel, option)
