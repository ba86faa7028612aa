"""The frame view: the picture scaled to the window off the GIL and blitted, with the colour bar
on its overlay panel; and the helpers that turn pictures into QImages."""

from __future__ import annotations

import time

import cv2
import numpy as np
from PyQt5.QtCore import QPointF, QRectF, QSize, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QColor, QFont, QImage, QLinearGradient, QPainter, QRegion
from PyQt5.QtWidgets import QSizePolicy, QWidget

__all__ = ["FrameView", "draw_colorbar", "fit", "image_array", "last_panel", "panels_of", "to_qimage"]


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
        background = QColor(24, 25, 28)
        if self._array is None:
            p.fillRect(self.rect(), background)
            if not self.busy:  # else the busy text below says it, once (not over a placeholder)
                p.setPen(QColor(160, 160, 165))
                f = p.font()
                f.setPointSizeF(f.pointSizeF() * 1.3)
                p.setFont(f)
                p.drawText(self.rect(), Qt.AlignCenter, self.placeholder)
        else:
            target = self.target_rect()
            at, picture = self._scaled_image(target)
            # the bars only: the picture covers the rest (a hole 1 pixel inside its edge, so that no
            # rounding leaves a seam of the last frame)
            ratio = picture.devicePixelRatio()
            shown = QRectF(at.x(), at.y(), picture.width() / ratio, picture.height() / ratio)
            for bar in QRegion(self.rect()).subtracted(QRegion(shown.toAlignedRect().adjusted(1, 1, -1, -1))).rects():
                p.fillRect(bar, background)
            p.drawImage(at, picture)  # a blit
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
