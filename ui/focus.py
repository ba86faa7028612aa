"""Where keys and the mouse wheel go in the control panel: to the window's one-key shortcuts and
to the panel's scrolling, not to a field or a control the pointer happens to pass over."""

from __future__ import annotations

import math
import re
import time

from PyQt5.QtCore import QEvent, QObject, Qt
from PyQt5.QtGui import QValidator
from PyQt5.QtWidgets import QAbstractScrollArea, QApplication, QComboBox, QDoubleSpinBox, QSlider, QSpinBox

__all__ = ["LATCH_S", "ComboBox", "DoubleSpinBox", "FrameKeys", "Slider", "SpinBox", "wheeled"]


class FrameKeys(QObject):
    """Event filter for spin boxes: ← and → (frame steps), Space (pause) and S, R, F, H (no modifier)
    go to the window's shortcuts, not to the number being edited (which has no use for them)."""

    KEYS = (Qt.Key_Left, Qt.Key_Right, Qt.Key_Space, Qt.Key_S, Qt.Key_R, Qt.Key_F, Qt.Key_H)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if (
            event.type() == QEvent.ShortcutOverride
            and event.key() in self.KEYS
            and event.modifiers() in (Qt.NoModifier, Qt.KeypadModifier)
        ):
            event.ignore()  # not claimed by the widget: the shortcut fires
            return True
        return False


#: A wheel turn within this many seconds of the last one that scrolled the panel scrolls it on,
#: whatever control the scrolling brought under the pointer (as browsers latch a scroll gesture).
LATCH_S = 0.6
_clock = time.monotonic  # (tests hold it still)


def wheeled(area: QAbstractScrollArea) -> None:
    """Note that the wheel scrolled ``area`` now (see :data:`LATCH_S`)."""
    area.wheeled_at = _clock()


def _latched(area: QAbstractScrollArea | None) -> bool:
    return area is not None and _clock() - getattr(area, "wheeled_at", -math.inf) < LATCH_S


class _WheelWhenFocused:
    """The wheel turns the control only once it has the keyboard focus (clicked first), and not
    while the wheel is scrolling the panel (:data:`LATCH_S`); else the event goes on to the panel,
    which scrolls. Scrolling down to the predictions used to change the opacity or the view it
    passed over, with nothing said; and a box typed in (it keeps the focus after Enter) took the
    wheel when the scrolling panel brought it under the pointer (a trial: 0.05 became 0.45). (A
    virtual override: an event filter on every control ran Python for each of their events, 1.5 ms
    of the worker's time a frame.)"""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.setFocusPolicy(Qt.StrongFocus)  # the wheel never gives the focus

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        area = self.parentWidget()
        while area is not None and not isinstance(area, QAbstractScrollArea):
            area = area.parentWidget()
        if self.hasFocus() and not _latched(area):
            super().wheelEvent(event)
            return
        if area is None:
            event.ignore()
        else:  # (sent to its scroll bar: an ignored event goes to the parent only where it came from the system)
            wheeled(area)
            QApplication.sendEvent(area.verticalScrollBar(), event)


class _ClampTyped:
    """A number typed beyond the range is taken (Enter) as the nearest end of the range. Qt refused
    the keystroke that went past it: typing 1200 in a box up to 1024 gave 120, applied as 128 with
    nothing said; typing 32 in a box from 64 was let go, the old value kept. Only a number of the
    box's own kind (a whole one in a :class:`SpinBox`) beyond the range is let through to be
    clamped; anything else is refused as Qt refuses it."""

    def _beyond(self, text: str) -> float | None:
        """The number ``text`` holds where it lies beyond the range, else ``None``."""
        body = text
        if self.prefix() and body.startswith(self.prefix()):
            body = body[len(self.prefix()):]
        if self.suffix() and body.endswith(self.suffix()):
            body = body[: -len(self.suffix())]
        body = body.strip()
        if isinstance(self, QSpinBox):
            if not re.fullmatch(r"[+-]?\d+", body):
                return None
            value = float(int(body))
        else:
            if not re.fullmatch(rf"[+-]?(\d+({re.escape(self.locale().decimalPoint())}\d*)?)", body):
                return None
            value = float(body.replace(self.locale().decimalPoint(), "."))
        return value if value > self.maximum() or value < self.minimum() else None

    def validate(self, text: str, pos: int):
        state, text, pos = super().validate(text, pos)
        if state == QValidator.Invalid and self._beyond(text) is not None:
            state = QValidator.Intermediate  # fixed up on Enter
        return state, text, pos

    def fixup(self, text: str) -> str:
        value = self._beyond(text)
        if value is None:
            return super().fixup(text)
        return self.textFromValue(self.maximum() if value > self.maximum() else self.minimum())


class ComboBox(_WheelWhenFocused, QComboBox):
    """A ``QComboBox`` the wheel changes only once focused."""


class SpinBox(_ClampTyped, _WheelWhenFocused, QSpinBox):
    """A ``QSpinBox`` the wheel changes only once focused; a number typed beyond its range is taken
    as the range's nearest end."""


class DoubleSpinBox(_ClampTyped, _WheelWhenFocused, QDoubleSpinBox):
    """A ``QDoubleSpinBox`` the wheel changes only once focused; a number typed beyond its range is
    taken as the range's nearest end."""


class Slider(_WheelWhenFocused, QSlider):
    """A ``QSlider`` the wheel moves only once focused."""
