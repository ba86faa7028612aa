"""Building the app's engine (always ending with one that runs) and describing it to the window.

No Qt here: the worker passes its signals' ``emit`` as the ``busy`` and ``error`` callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import EigenCamError
from eigencam_live.models import Layer

__all__ = ["EngineStatus", "build_engine", "layer_list"]

Say = Callable[[str], object]


@dataclass(frozen=True)
class EngineStatus:
    """What the window shows about the engine (sent after every (re)configuration)."""

    config: EngineConfig
    layer: str
    default_layer: str
    device: str
    backend: str
    dtype: str
    trained: bool
    warning: str | None

    @classmethod
    def of(cls, engine: Engine) -> EngineStatus:
        return cls(config=engine.config, layer=engine.layer, default_layer=engine.loaded.spec.layer,
                   device=str(engine.device),
                   backend=engine.backend.running, dtype=str(engine.dtype).replace("torch.", ""), trained=bool(engine.loaded.trained),
                   warning=engine.warning)


def build_engine(config: EngineConfig, busy: Say, error: Say, *, fallback: bool = True) -> Engine | None:
    """``config``'s engine; when it cannot be built (a remembered layer missing from a remembered
    model), its model's default layer, then the library's defaults, so that the app always opens.
    Says why the first attempt failed through ``error``; ``None`` only if even the defaults fail
    (or, with ``fallback=False``, if the first attempt does)."""
    busy(f"loading {config.model}…")
    engine = None
    attempts = (config, replace(config, layer=None), EngineConfig(weights="none")) if fallback else (config,)
    for i, attempt in enumerate(attempts):
        try:
            engine = Engine(attempt, fallback_untrained=True)
            break
        except EigenCamError as exc:
            if i == 0:
                error(str(exc))
        except Exception as exc:  # pragma: no cover - e.g. out of memory while building
            error(f"cannot build {attempt.model}: {type(exc).__name__}: {exc}")
            if not fallback:
                break
    busy("")
    return engine


def layer_list(engine: Engine, cache: dict[tuple, list], error: Say) -> list[Layer]:
    """The engine's model's feature layers with their shapes for the current input size, listed once
    per model and input size."""
    key = (engine.config.model, engine.loaded.weights, engine.input_size())
    layers = cache.get(key)
    if layers is None:
        try:
            layers = engine.feature_layers()
        except Exception as exc:
            error(f"cannot list the layers of {engine.config.model}: {exc}")
            layers = [Layer(engine.layer, "?", ())]
        if len(cache) >= 16:
            cache.clear()
        cache[key] = layers
    return list(layers)
