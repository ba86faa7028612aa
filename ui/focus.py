"""Where keys and the mouse wheel go in the control panel: to the window's one-key shortcuts and
to the panel's scrolling, not to a field or a control the pointer happens to pass over."""

from __future__ import annotations

from PyQt5.QtCore import QEvent, QObject, Qt
from PyQt5.QtWidgets import QAbstractSlider, QAbstractSpinBox, QApplication, QComboBox, QScrollArea, QScrollBar

__all__ = ["FrameKeys", "WheelScrolls"]


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


class WheelScrolls(QObject):
    """The wheel over a slider, a list or a number of the panel ``scroll`` scrolls the panel unless
    that control has the keyboard focus (clicked first): scrolling down to the predictions used to
    change the opacity or the view it passed over, with nothing said."""

    def __init__(self, scroll: QScrollArea) -> None:
        super().__init__(scroll)
        self._scroll = scroll
        for kind in (QAbstractSlider, QAbstractSpinBox, QComboBox):
            for widget in scroll.widget().findChildren(kind):
                if isinstance(widget, QScrollBar):  # a list's own scroll bar scrolls that list
                    continue
                widget.setFocusPolicy(Qt.StrongFocus)  # the wheel never gives them the focus
                widget.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Wheel and not obj.hasFocus():
            QApplication.sendEvent(self._scroll.verticalScrollBar(), event)
            return True
        return False
