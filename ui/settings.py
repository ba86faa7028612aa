"""Remembered settings: one key list, read when the app starts and written when it closes.

``store`` is a ``QSettings`` or anything with ``value(key)``, ``setValue(key, value)`` and
``sync()`` (no Qt import here). Values come back as strings from an INI file; each is converted to
its field's type and validated by the config dataclass, and a bad one is skipped (the default stays).
"""

from __future__ import annotations

import json
import os
from dataclasses import fields, replace
from typing import Any, Protocol, TypeVar

from eigencam_live.engine import EngineConfig
from eigencam_live.errors import EigenCamError
from eigencam_live.models import model_kind
from eigencam_live.render import RenderConfig
from eigencam_live.video.sources import local_path

__all__ = ["ENGINE_KEYS", "PANEL_KEYS", "RENDER_KEYS", "load_configs", "load_geometry", "load_panel", "load_recent",
           "load_source", "save", "weights_for", "with_recent"]

#: Engine settings the app remembers (``top_k`` is fixed by the panel, ``optimize`` is a CLI choice).
ENGINE_KEYS = ("model", "weights", "layer", "component", "method", "short_side", "device", "backend", "precision",
               "smoothing", "score")
RENDER_KEYS = tuple(f.name for f in fields(RenderConfig))
SOURCE_KEY = "source"
RECENT_KEY = "sources/recent"
#: Sources offered again in the source list, the latest first.
RECENT_MOST = 8
GEOMETRY_KEY = "window/geometry"
#: The panel's own ticks (what the window draws, not the library's look), with their defaults.
PANEL_KEYS = {"colorbar": True, "timecode": False}

C = TypeVar("C", EngineConfig, RenderConfig)


class Store(Protocol):
    def value(self, key: str) -> Any: ...
    def setValue(self, key: str, value: Any) -> None: ...  # noqa: N802 (Qt's name)
    def sync(self) -> None: ...


def weights_for(model: str, weights: str) -> str:
    """The weights another model starts with: random ones stay random between models of the zoos
    (offline, on purpose); a factory, an ONNX file or a YOLO file runs as built; a state_dict file
    was for the model before (it does not fit another)."""
    own = model_kind(model) in ("factory", "onnx", "yolo")
    return "none" if weights == "none" and not own else "imagenet"


def load_configs(store: Store) -> tuple[EngineConfig, RenderConfig]:
    """The remembered engine and render settings over the library's defaults."""
    return _load(store, "engine", EngineConfig(), ENGINE_KEYS), _load(store, "render", RenderConfig(), RENDER_KEYS)


def load_source(store: Store) -> str | None:
    """The last source opened (a camera index comes back as a string of digits), ``None`` if none."""
    value = store.value(SOURCE_KEY)
    return str(value) if value else None


def load_recent(store: Store) -> list[str]:
    """The files, folders and URLs opened before, the latest first (kept as JSON: an INI file gives
    a list of one back as a plain string)."""
    raw = store.value(RECENT_KEY)
    try:
        items = json.loads(raw) if isinstance(raw, str) and raw else []
    except ValueError:
        return []  # edited by hand
    return [s for s in items if isinstance(s, str) and s][:RECENT_MOST] if isinstance(items, list) else []


def with_recent(recent: list[str], spec: str | int) -> list[str]:
    """``recent`` with ``spec`` first, where it is a file, a folder or a URL (not a camera or a demo);
    a path as an absolute one (a review: one typed relative was another file, or none, in a run
    from another folder; ``~`` and a file manager's ``file://`` were never offered again)."""
    text = str(spec).strip()
    if text.isdigit() or text.lower() in ("demo", "scene"):
        return recent
    text = local_path(text)
    if "://" not in text:
        text = os.path.abspath(os.path.expanduser(text))
    return [text, *(s for s in recent if s != text)][:RECENT_MOST]


def load_geometry(store: Store) -> Any:
    """The window geometry saved by ``QWidget.saveGeometry`` (``None`` if none)."""
    return store.value(GEOMETRY_KEY)


def load_panel(store: Store) -> dict[str, bool]:
    """The panel's ticks (:data:`PANEL_KEYS`) as remembered, the defaults where none is."""
    ticks = {}
    for key, default in PANEL_KEYS.items():
        raw = store.value(f"panel/{key}")  # an INI file gives "true"/"false"
        ticks[key] = default if raw is None else str(raw).strip().lower() in ("true", "1")
    return ticks


def save(store: Store, engine: EngineConfig, render: RenderConfig, source: str | int | None,
         geometry: Any = None, recent: list[str] | None = None, panel: dict[str, bool] | None = None) -> None:
    """Remember ``engine``, ``render``, ``source``, the window ``geometry``, the ``recent``
    sources and the ``panel``'s ticks (written at once); ``source`` ``None`` (none opened this run)
    keeps the one remembered before."""
    for group, config, keys in (("engine", engine, ENGINE_KEYS), ("render", render, RENDER_KEYS)):
        for key in keys:
            value = getattr(config, key)
            store.setValue(f"{group}/{key}", "" if value is None else value)
    if source is not None:
        store.setValue(SOURCE_KEY, str(source))
    if geometry is not None:
        store.setValue(GEOMETRY_KEY, geometry)
    if recent is not None:
        store.setValue(RECENT_KEY, json.dumps(recent[:RECENT_MOST]))
    for key, on in (panel or {}).items():
        store.setValue(f"panel/{key}", bool(on))
    store.sync()


def _load(store: Store, group: str, config: C, keys: tuple[str, ...]) -> C:
    for key in keys:
        raw = store.value(f"{group}/{key}")
        if raw is None:
            continue
        default = getattr(config, key)
        try:
            if isinstance(default, bool):  # an INI file gives "true"/"false"; bool("false") is True
                value = str(raw).strip().lower() in ("true", "1")
            else:
                value = None if raw == "" else (str(raw) if default is None else type(default)(raw))
            config = replace(config, **{key: value})
        except (EigenCamError, TypeError, ValueError):
            pass  # a value from an older version or edited by hand: keep the default
    return config

