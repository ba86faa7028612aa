"""Display widgets: the frame view, the predictions and spectrum panels, the shortcuts overlay."""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import QRectF, QSize, Qt
from PyQt5.QtGui import QColor, QFont, QImage, QPainter, QPen
from PyQt5.QtWidgets import QSizePolicy, QWidget

from .shortcuts import SHORTCUTS

__all__ = ["FrameView", "PredictionsPanel", "ShortcutsOverlay", "SpectrumPanel", "to_qimage"]

def to_qimage(image: np.ndarray) -> QImage:
    """``(H, W, 3)`` uint8 BGR -> QImage sharing the buffer (keep ``image`` alive as long)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 with a shape of (H, W, 3). Got {image.dtype} {image.shape}")
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    return QImage(image.data, w, h, image.strides[0], QImage.Format_BGR888)


class FrameView(QWidget):
    """Paints the current frame scaled to the widget, keeping its aspect, on a dark background.

    Painting happens only in :meth:`paintEvent` from an owned image, and the widget paints every
    pixel itself (opaque), so frames replace each other without flicker.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WA_OpaquePaintEvent, True)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(320, 240)
        self.setFocusPolicy(Qt.StrongFocus)
        self._array: np.ndarray | None = None  # keeps the QImage's buffer alive
        self._qimage: QImage | None = None
        self.placeholder = "Starting…"

    def set_image(self, image: np.ndarray | None) -> None:
        self._array = image
        self._qimage = None if image is None else to_qimage(image)
        self.update()

    def image(self) -> np.ndarray | None:
        return self._array

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(960, 720)

    def target_rect(self) -> QRectF:
        """Where the image lands: centred, scaled to fit, aspect kept."""
        if self._qimage is None:
            return QRectF(self.rect())
        iw, ih = self._qimage.width(), self._qimage.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 25, 28))
        if self._qimage is None:
            p.setPen(QColor(160, 160, 165))
            f = p.font()
            f.setPointSizeF(f.pointSizeF() * 1.3)
            p.setFont(f)
            p.drawText(self.rect(), Qt.AlignCenter, self.placeholder)
        else:
            p.setRenderHint(QPainter.SmoothPixmapTransform, True)
            p.drawImage(self.target_rect(), self._qimage)
        p.end()


class PredictionsPanel(QWidget):
    """Top-k labels with probability bars."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.predictions: list[tuple[str, float]] = []
        self.untrained = False
        self.setMinimumHeight(114)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)

    def set_predictions(self, predictions: list[tuple[str, float]], untrained: bool = False) -> None:
        self.predictions = list(predictions)[:5]
        self.untrained = untrained
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(280, 114)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        row = 22
        w = self.width()
        pal = self.palette()
        if not self.predictions:
            p.setPen(pal.color(pal.Disabled, pal.WindowText))
            p.drawText(self.rect(), Qt.AlignCenter, "no frame yet")
            return
        bar_w = max(60, int(w * 0.38))
        for i, (label, prob) in enumerate(self.predictions):
            y = 2 + i * row
            p.fillRect(w - bar_w - 52, y + 5, bar_w, row - 10, QColor(70, 72, 78))
            colour = QColor(150, 150, 150) if self.untrained else QColor(80, 160, 255)
            p.fillRect(w - bar_w - 52, y + 5, int(bar_w * max(0.0, min(1.0, prob))), row - 10, colour)
            p.setPen(pal.color(pal.WindowText))
            metrics = p.fontMetrics()
            text = metrics.elidedText(label, Qt.ElideRight, w - bar_w - 60)
            p.drawText(QRectF(0, y, w - bar_w - 58, row), Qt.AlignVCenter | Qt.AlignLeft, text)
            p.drawText(QRectF(w - 48, y, 48, row), Qt.AlignVCenter | Qt.AlignRight, f"{prob * 100:.1f}%")
        p.end()


class SpectrumPanel(QWidget):
    """Explained variance of the first five components as bars; the chosen one highlighted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.explained = np.zeros(0, np.float32)
        self.component = 1
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)

    def set_spectrum(self, explained: np.ndarray, component: int) -> None:
        self.explained = np.asarray(explained, np.float32)[:5]
        self.component = int(component)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(280, 110)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        pal = self.palette()
        w, h = self.width(), self.height()
        n = 5
        label_h, margin = 18, 18
        slot = w / n
        bar_h = h - label_h - margin
        p.setPen(QPen(QColor(90, 92, 98), 1))
        p.drawLine(0, margin + bar_h, w, margin + bar_h)
        # Bars relative to the largest component, so small spectra stay readable; labels give the %.
        top = max(float(self.explained.max()) if len(self.explained) else 0.0, 1e-6)
        for i in range(n):
            value = float(self.explained[i]) if i < len(self.explained) else 0.0
            x = i * slot + slot * 0.18
            bw = slot * 0.64
            bh = (bar_h - 16) * max(0.0, min(1.0, value / top))
            chosen = i + 1 == self.component
            colour = QColor(255, 170, 40) if chosen else QColor(100, 130, 170)
            p.fillRect(QRectF(x, margin + bar_h - bh, bw, bh), colour)
            p.setPen(pal.color(pal.WindowText))
            f = QFont(p.font())
            f.setBold(chosen)
            p.setFont(f)
            if i < len(self.explained):
                p.drawText(QRectF(i * slot, margin + bar_h - bh - 16, slot, 16), Qt.AlignCenter, f"{value * 100:.0f}%")
            p.drawText(QRectF(i * slot, margin + bar_h + 1, slot, label_h), Qt.AlignCenter, f"PC{i + 1}")
        p.end()


class ShortcutsOverlay(QWidget):
    """A translucent card listing the keyboard shortcuts (:data:`ui.shortcuts.SHORTCUTS`), over the view."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.rows = [(row.label, row.help) for row in SHORTCUTS]
        self.setAttribute(Qt.WA_TransparentForMouseEvents, True)
        self.hide()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        p.fillRect(self.rect(), QColor(0, 0, 0, 110))
        f = QFont(p.font())
        f.setPointSizeF(f.pointSizeF() * 1.15)
        p.setFont(f)
        row = p.fontMetrics().height() + 10
        # Wide enough for the longest description (it was cut at a fixed 460 px).
        widest = max(p.fontMetrics().horizontalAdvance(what) for _, what in self.rows)
        card_w, card_h = max(460, 160 + widest + 24), row * (len(self.rows) + 1) + 30
        card = QRectF((self.width() - card_w) / 2, (self.height() - card_h) / 2, card_w, card_h)
        p.setBrush(QColor(30, 32, 36, 235))
        p.setPen(QPen(QColor(90, 92, 98), 1))
        p.drawRoundedRect(card, 10, 10)
        p.setPen(QColor(235, 235, 240))
        bold = QFont(f)
        bold.setBold(True)
        p.setFont(bold)
        p.drawText(QRectF(card.x(), card.y() + 10, card_w, row), Qt.AlignCenter, "Keyboard shortcuts")
        for i, (key, what) in enumerate(self.rows):
            y = card.y() + 14 + row * (i + 1)
            p.setFont(bold)
            p.setPen(QColor(255, 190, 80))
            p.drawText(QRectF(card.x() + 20, y, 120, row), Qt.AlignVCenter | Qt.AlignRight, key)
            p.setFont(f)
            p.setPen(QColor(225, 225, 230))
            p.drawText(QRectF(card.x() + 160, y, card_w - 170, row), Qt.AlignVCenter | Qt.AlignLeft, what)
        p.end()
