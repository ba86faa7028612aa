"""The one table of keyboard shortcuts: it makes the window's actions, the toolbar and the help overlay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SHORTCUTS", "Shortcut", "key_name", "shortcut"]

#: How a key is written for people (the table holds QKeySequence strings).
_KEY_NAMES = {"Left": "←", "Right": "→", "Escape": "Esc"}


def key_name(key: str) -> str:
    return _KEY_NAMES.get(key, key)


@dataclass(frozen=True)
class Shortcut:
    """One row.

    Attributes:
        name: how the window finds the row's action (``"pause"``).
        keys: QKeySequence strings (``"Space"``, ``"Ctrl+Q"``); empty for a gesture (drop a file).
        help: what it does, for the help overlay.
        run: what it calls, given the window; ``None`` for a gesture handled elsewhere.
        button: the toolbar button's text (the first key is shown after it); ``None``: no button.
        group: toolbar group; a separator stands between groups.
        gesture: what the overlay shows instead of keys (``"drop a file"``).
    """

    name: str
    keys: tuple[str, ...]
    help: str
    run: Callable[[Any], object] | None
    button: str | None = None
    group: int = 0
    gesture: str = ""

    @property
    def label(self) -> str:
        """The keys as the help overlay shows them: ``"H or ?"``."""
        return " or ".join(key_name(k) for k in self.keys) or self.gesture

    def button_text(self, text: str | None = None) -> str:
        """The toolbar text, ``"Pause  (Space)"``; ``text`` replaces the button's word (``"Resume"``)."""
        return f"{text or self.button}  ({key_name(self.keys[0])})"


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("pause", ("Space",), "pause / resume", lambda w: w.toggle_pause(), "Pause", 0),
    Shortcut("back", ("Left",), "step one frame back (files)", lambda w: w.step(-1), "◀ Back", 0),
    Shortcut("step", ("Right",), "step one frame forward", lambda w: w.step(1), "Step ▶", 0),
    Shortcut("snapshot", ("S",), "snapshot: view PNG, raw frame PNG, map .npy, settings .json", lambda w: w.snapshot(), "Snapshot", 1),
    Shortcut("record", ("R",), "start / stop recording (H.264)", lambda w: w.toggle_recording(), "● Record", 1),
    Shortcut("compare", ("C",), "compare components 1-5 on this frame", lambda w: w.compare(), "Compare", 1),
    Shortcut("compare_layers", ("L",), "compare this component across layers", lambda w: w.compare_layers(),
             "Layers", 1),
    Shortcut("fullscreen", ("F",), "fullscreen on / off", lambda w: w.toggle_fullscreen(), "Fullscreen", 2),
    Shortcut("help", ("H", "?"), "this help", lambda w: w.toggle_help(), "Shortcuts", 2),
    Shortcut("escape", ("Escape",), "close help or compare / leave fullscreen", lambda w: w.escape()),
    Shortcut("quit", ("Ctrl+Q",), "quit", lambda w: w.close()),
    Shortcut("drop", (), "open it (a video, an image, a folder)", None, gesture="drop a file"),
)


def shortcut(name: str) -> Shortcut:
    """The row called ``name``."""
    for row in SHORTCUTS:
        if row.name == name:
            return row
    raise KeyError(f"no shortcut named {name!r}; known: {', '.join(r.name for r in SHORTCUTS)}")
