"""Typed messages from the window to the pipeline's worker thread.

Each is a small frozen dataclass checked on construction (in the GUI thread, so a wrong call fails
where it is made, not later in the worker). :class:`~ui.worker.Pipeline` keeps one handler per
message type; a message type without a handler is a test failure, not a silent no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from eigencam_live.engine import EngineConfig
from eigencam_live.errors import ConfigError
from eigencam_live.render import RenderConfig
from eigencam_live.video import Frame

__all__ = [
    "Command",
    "Compare",
    "FindCameras",
    "OpenSource",
    "Reconfigure",
    "Seek",
    "SetPaused",
    "SetRender",
    "SetTimecode",
    "StartRecording",
    "Step",
    "StopRecording",
]

_ENGINE_FIELDS = frozenset(f.name for f in fields(EngineConfig))


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool. Got {type(value).__name__} {value!r}")


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int. Got {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class OpenSource:
    """Open ``spec`` (``"demo"``, a camera index, a file, a folder, a URL); the video state resets."""

    spec: str | int

    def __post_init__(self) -> None:
        if isinstance(self.spec, bool) or not isinstance(self.spec, (str, int)):
            raise TypeError(f"spec must be a str or a camera index. Got {type(self.spec).__name__} {self.spec!r}")


@dataclass(frozen=True)
class Reconfigure:
    """Engine settings (field names of :class:`EngineConfig`), applied from the next frame."""

    changes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.changes) - _ENGINE_FIELDS)
        if unknown:
            raise ConfigError(f"unknown engine setting(s) {', '.join(unknown)}; "
                              f"allowed: {', '.join(sorted(_ENGINE_FIELDS))}")


@dataclass(frozen=True)
class SetRender:
    """How maps are drawn from the next frame (or, while paused, on the frame on screen)."""

    config: RenderConfig

    def __post_init__(self) -> None:
        if not isinstance(self.config, RenderConfig):
            raise TypeError(f"config must be a RenderConfig. Got {type(self.config).__name__}")


@dataclass(frozen=True)
class SetPaused:
    """Stop (``True``) or resume (``False``) reading frames.

    ``shown``: the frame on screen when the user paused (the packet's own ``Frame``). The pause
    lands on it even when the worker had processed the next one meanwhile (in flight then): that
    one waits, and the next step or play shows it."""

    paused: bool
    shown: Frame | None = None

    def __post_init__(self) -> None:
        _check_bool("paused", self.paused)
        if self.shown is not None and not isinstance(self.shown, Frame):
            raise TypeError(f"shown must be a Frame or None. Got {type(self.shown).__name__}")


@dataclass(frozen=True)
class Step:
    """Pause and process the next frame (``delta > 0``) or, on seekable files, go back ``-delta``."""

    delta: int = 1

    def __post_init__(self) -> None:
        _check_int("delta", self.delta)
        if self.delta == 0:
            raise ValueError("delta must be non-zero (+1 forward, -1 back)")


@dataclass(frozen=True)
class Seek:
    """Go to frame ``index`` (0-based) of a seekable file; ``loop``: a looped file starting again,
    whose rates measure on (they started over each time: 0.0 fps on a short folder)."""

    index: int
    loop: bool = False

    def __post_init__(self) -> None:
        _check_int("index", self.index)
        if self.index < 0:
            raise ValueError(f"index must be >= 0. Got {self.index}")


@dataclass(frozen=True)
class StartRecording:
    """Record the frames shown from now on to ``path`` (an ``.mp4``)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))


@dataclass(frozen=True)
class StopRecording:
    """Finish the recording (nothing happens when none runs)."""


@dataclass(frozen=True)
class FindCameras:
    """Probe for connected cameras (slow: done in the worker)."""


@dataclass(frozen=True)
class SetTimecode:
    """Stamp the frame number and time on the pictures shown and recorded (``True``) or not."""

    on: bool

    def __post_init__(self) -> None:
        _check_bool("on", self.on)


@dataclass(frozen=True)
class Compare:
    """Map the frame on screen with each of the first ``count`` components (2 to 5), side by side;
    or, given ``layers`` (2 to 8 layer names), with the component in use at each of those layers."""

    count: int = 4
    layers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_int("count", self.count)
        if not 2 <= self.count <= 5:
            raise ValueError(f"count must be in [2, 5]. Got {self.count}")
        if not isinstance(self.layers, tuple) or not all(isinstance(n, str) and n for n in self.layers):
            raise TypeError(f"layers must be a tuple of layer names. Got {self.layers!r}")
        if self.layers and not 2 <= len(self.layers) <= 8:
            raise ValueError(f"layers must name 2 to 8 layers. Got {len(self.layers)}")


Command = Compare | SetTimecode | OpenSource | Reconfigure | SetRender | SetPaused | Step | Seek | StartRecording | StopRecording | FindCameras
