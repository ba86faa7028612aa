"""Display widgets: the frame view, the predictions and spectrum panels, the shortcuts overlay."""

from __future__ import annotations

import time

import cv2
import numpy as np
from PyQt5.QtCore import QPointF, QRectF, QSize, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QColor, QFont, QFontMetrics, QImage, QLinearGradient, QPainter, QPen
from PyQt5.QtWidgets import (
    QSizePolicy,
    QSlider,
    QStyle,
    QStyleOptionComboBox,
    QStyleOptionSlider,
    QStylePainter,
    QWidget,
)

from .focus import ComboBox
from .shortcuts import SHORTCUTS

__all__ = ["FrameView", "PredictionsPanel", "SeekSlider", "ShortcutsOverlay", "SpectrumPanel", "fit", "image_array",
           "to_qimage"]

def to_qimage(image: np.ndarray) -> QImage:
    """``(H, W, 3)`` uint8 BGR -> a QImage of its own, ``Format_RGB32`` (``B, G, R, 255`` in
    memory), which Qt scales and paints on its fast path: a 640x480 frame smoothly scaled into a
    960x720 view took 3.7 ms as ``Format_BGR888`` (converted pixel by pixel on the GUI thread at
    each paint, half its time in the app) and 1.3 ms so, the conversion here 0.1 ms."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 with a shape of (H, W, 3). Got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    qimage = QImage(w, h, QImage.Format_RGB32)
    cv2.cvtColor(image, cv2.COLOR_BGR2BGRA, dst=image_array(qimage))
    return qimage


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size = (width, height)`` for the screen, in about a millisecond at HD:
    bilinear, after halving it with a Gaussian (``pyrDown``) while it is at least twice too large,
    so that a 4K picture shrunk into a window does not alias (``INTER_AREA`` at a factor that is
    not whole took 7 ms for 1080p and 19 ms for 4K into a 1000x563 view; this 1 and 6 ms)."""
    if size == (image.shape[1], image.shape[0]):
        return image
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        image = cv2.pyrDown(image)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def image_array(qimage: QImage) -> np.ndarray:
    """The ``(H, W, 4)`` uint8 pixels of a ``Format_RGB32`` QImage (``B, G, R, 255``), a view of its
    own buffer (detached first: writing never reaches an image it shares data with). The view does
    not keep ``qimage`` alive: hold it as long as the view is used."""
    if qimage.depth() != 32:
        raise ValueError(f"qimage must be 32 bits a pixel (Format_RGB32). Got format {qimage.format()}")
    bits = qimage.bits()  # non-const: detaches a shared copy
    bits.setsize(qimage.sizeInBytes())
    rows = np.frombuffer(bits, np.uint8).reshape(qimage.height(), qimage.bytesPerLine())
    return rows[:, : qimage.width() * 4].reshape(qimage.height(), qimage.width(), 4)


class FrameView(QWidget):
    """Paints the current frame scaled to the widget, keeping its aspect, on a dark background.

    Painting happens only in :meth:`paintEvent` from an owned image, and the widget paints every
    pixel itself (opaque), so frames replace each other without flicker.
    """

    #: the widget's size changed (the window chooses the two-panel layout that fits it best)
    resized = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WA_OpaquePaintEvent, True)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(480, 270)
        self.setFocusPolicy(Qt.StrongFocus)
        self._array: np.ndarray | None = None  # the picture shown, as given
        self._scaled: tuple[tuple, QImage] | None = None  # it as painted: ((device pixels, ratio), image)
        self.placeholder = "Starting…"
        self.busy = ""  # said over a dimmed picture while, e.g., a model loads
        self._busy_since = 0.0
        self._busy_clock = QTimer(self, interval=1000)  # the seconds it has taken, said under it
        self._busy_clock.timeout.connect(self.update)
        self.colorbar: np.ndarray | None = None  # (256, 3) uint8 BGR lookup table, drawn at the right
        self.panels = (1, 1)  # (columns, rows) of frame-sized panels in the image
        self.aspect = 1.0  # the shape of a pixel, width / height (anamorphic video is shown as wide as meant)
        self.badge = ""  # said in the top left corner (fullscreen: "● REC", "PAUSED", where no bar says it)

    def set_busy(self, text: str) -> None:
        """Dim the picture and say ``text`` over it (``""``: back to normal), with the seconds it has
        taken from the third on (an export of a large network takes half a minute)."""
        if text and text != self.busy:
            self._busy_since = time.monotonic()
        self.busy = text
        if text:
            self._busy_clock.start()
        else:
            self._busy_clock.stop()
        self.update()

    def busy_line(self) -> str:
        """What is said over the picture: :attr:`busy`, and the seconds it has taken from 2 s on."""
        seconds = int(time.monotonic() - self._busy_since)
        return f"{self.busy}\n{seconds} s" if self.busy and seconds >= 2 else self.busy

    def set_colorbar(self, lut: np.ndarray | None) -> None:
        """Show the colormap's scale (``(256, 3)`` uint8 BGR, low to high) beside the picture."""
        self.colorbar = None if lut is None else np.asarray(lut, np.uint8)
        self.update()

    def set_image(self, image: np.ndarray | None, panels: tuple[int, int] = (1, 1)) -> None:
        """Show ``image``; ``panels``: its ``(columns, rows)`` of frame-sized panels (side by side
        ``(2, 1)``, stacked ``(1, 2)``): the colour bar goes on the last, the overlay."""
        self._array = image
        self._scaled = None  # made at the next paint, at the size it is painted at
        self.panels = panels
        self.update()

    def image(self) -> np.ndarray | None:
        return self._array

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(960, 720)

    def _scaled_image(self, target: QRectF) -> tuple[QPointF, QImage]:
        """Where to blit the picture, and the picture at the size it is painted at (in device
        pixels), made by OpenCV: Qt's own smooth scaling in ``drawImage`` holds the GIL (2 to 8 ms a
        paint), and each Python step of the network's thread waited for it (the app ran 50 fps on
        2 cores where the engine alone ran 85); OpenCV lets it go. Made once per picture and size."""
        ratio = self.devicePixelRatioF()
        size = (max(1, round(target.width() * ratio)), max(1, round(target.height() * ratio)))
        if self._scaled is None or self._scaled[0] != (size, ratio):
            qimage = to_qimage(fit(self._array, size))
            qimage.setDevicePixelRatio(ratio)
            self._scaled = ((size, ratio), qimage)
        # on a whole device pixel: a half one makes Qt resample the picture's edge
        at = QPointF(round(target.x() * ratio) / ratio, round(target.y() * ratio) / ratio)
        return at, self._scaled[1]

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self.resized.emit()

    def target_rect(self) -> QRectF:
        """Where the image lands: centred, scaled to fit, aspect kept (its pixels' shape too)."""
        if self._array is None:
            return QRectF(self.rect())
        iw, ih = self._array.shape[1] * self.aspect, self._array.shape[0]
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 25, 28))
        if self._array is None:
            if not self.busy:  # else the busy text below says it, once (not over a placeholder)
                p.setPen(QColor(160, 160, 165))
                f = p.font()
                f.setPointSizeF(f.pointSizeF() * 1.3)
                p.setFont(f)
                p.drawText(self.rect(), Qt.AlignCenter, self.placeholder)
        else:
            target = self.target_rect()
            p.drawImage(*self._scaled_image(target))  # a blit
            if self.colorbar is not None:
                draw_colorbar(p, self.colorbar, last_panel(target, self.panels))
            if self.busy:
                p.fillRect(self.rect(), QColor(20, 20, 24, 170))
        if self.busy:
            f = QFont(p.font())
            f.setPointSizeF(f.pointSizeF() * 1.5)
            f.setBold(True)
            p.setFont(f)
            p.setPen(QColor(255, 220, 150))
            p.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self.busy_line())
        if self.badge:
            f = QFont(p.font())
            f.setBold(True)
            p.setFont(f)
            box = QRectF(p.fontMetrics().boundingRect(self.badge)).adjusted(-8, -3, 8, 3)
            box.moveTopLeft(QRectF(self.rect()).topLeft() + QRectF(0, 0, 12, 12).bottomRight())
            p.fillRect(box, QColor(198, 40, 40) if "REC" in self.badge else QColor(20, 20, 24, 200))
            p.setPen(QColor(255, 255, 255))
            p.drawText(box, Qt.AlignCenter, self.badge)
        p.end()


def panels_of(picture_shape: tuple[int, ...], frame_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(columns, rows)`` of ``frame_shape`` panels in a ``picture_shape`` picture (``(H, W, ...)``
    both): ``(2, 1)`` side by side, ``(1, 2)`` stacked, ``(1, 1)`` otherwise."""
    return (max(1, picture_shape[1] // max(1, frame_shape[1])), max(1, picture_shape[0] // max(1, frame_shape[0])))


def last_panel(target: QRectF, panels: tuple[int, int]) -> QRectF:
    """The bottom-right panel of ``target`` split into ``panels = (columns, rows)``: the overlay
    of a side-by-side or stacked picture."""
    cols, rows = panels
    w, h = target.width() / cols, target.height() / rows
    return QRectF(target.x() + (cols - 1) * w, target.y() + (rows - 1) * h, w, h)


def draw_colorbar(p: QPainter, lut: np.ndarray, target: QRectF) -> None:
    """The colormap's scale inside the right edge of ``target`` (where the picture is): a vertical
    bar, high at the top, with 0 and 1 (the map is normalised to [0, 1] on every frame)."""
    metrics = p.fontMetrics()
    width = 14.0
    height = min(220.0, target.height() * 0.6)
    x = target.right() - width - 10 - metrics.horizontalAdvance("1.0") - 4
    y = target.top() + (target.height() - height) / 2
    bar = QRectF(x, y, width, height)
    gradient = QLinearGradient(bar.bottomLeft(), bar.topLeft())
    for i in range(0, 256, 15):
        b, g, r = (int(v) for v in lut[i])
        gradient.setColorAt(i / 255.0, QColor(r, g, b))
    b, g, r = (int(v) for v in lut[255])
    gradient.setColorAt(1.0, QColor(r, g, b))
    p.fillRect(bar.adjusted(-2, -2, metrics.horizontalAdvance("1.0") + 8, 2), QColor(0, 0, 0, 120))
    p.fillRect(bar, gradient)
    if height < 2 * metrics.height() + 4:  # a strip of a picture: 1.0 and 0.0 would be drawn over each other
        return
    p.setPen(QColor(235, 235, 240))
    p.drawText(QRectF(bar.right() + 3, bar.top() - 2, 40, metrics.height()), Qt.AlignLeft | Qt.AlignTop, "1.0")
    p.drawText(QRectF(bar.right() + 3, bar.bottom() - metrics.height() + 2, 40, metrics.height()),
               Qt.AlignLeft | Qt.AlignBottom, "0.0")


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
        return star + fm.elidedText(label[len(star):], Qt.ElideLeft, max(room - fm.horizontalAdvance(star), 0)) + tail

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.CC_ComboBox, option)
        field = self.style().subControlRect(QStyle.CC_ComboBox, option, QStyle.SC_ComboBoxEditField, self)
        option.currentText = self.closed_text(field.width() - 4)
        painter.drawControl(QStyle.CE_ComboBoxLabel, option)
