"""Building the app's engine (always ending with one that runs) and describing it to the window.

No Qt here: the worker passes its signals' ``emit`` as the ``busy`` and ``error`` callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import EigenCamError
from eigencam_live.models import Layer, model_kind

__all__ = ["EngineStatus", "build_engine", "layer_list"]

Say = Callable[[str], object]

#: What picks and places the network, beside the model: reset for a fallback where not typed.
_NETWORK = ("layer", "weights", "device", "precision", "backend", "labels", "mean", "std")


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
    detector: bool = False
    fixed_input: tuple[int, int] | None = None  # (H, W) the network takes whatever the short side
    #: what runs otherwise than asked, for as long as it does (ONNX Runtime's fallback to torch at a
    #: size, bf16 emulated): the backend's warning
    backend_warning: str | None = None

    @property
    def weights_said(self) -> str:
        """``trained``, ``untrained``, or ``own weights`` where they are the model's own business
        (an ONNX file, a factory as built or a YOLO file, a weights file: trained or not, the app
        cannot know; a trial's random state_dict was said to be trained)."""
        if not self.trained:
            return "untrained"
        own = model_kind(self.config.model) in ("onnx", "factory", "yolo") and self.config.weights == "imagenet"
        return "own weights" if own or self.config.weights not in ("imagenet", "none") else "trained"

    @classmethod
    def of(cls, engine: Engine) -> EngineStatus:
        return cls(config=engine.config, layer=engine.layer, default_layer=engine.loaded.spec.layer,
                   device=str(engine.device),
                   backend=engine.backend.running, dtype=str(engine.dtype).replace("torch.", ""), trained=bool(engine.loaded.trained),
                   warning=engine.warning, detector=bool(engine.loaded.detector),
                   fixed_input=engine.loaded.spec.fixed_input, backend_warning=engine.backend.warning)


def build_engine(config: EngineConfig, busy: Say, error: Say, *, typed: frozenset[str] = frozenset(),
                 fatal: Say | None = None) -> Engine | None:
    """``config``'s engine; when it cannot be built (a remembered layer missing from a remembered
    model), its model's default layer, then the library's defaults, so that the app always opens.
    Says why the first attempt failed through ``error``; ``None`` only if even the defaults fail.

    ``typed``: the settings named on the command line, which must be had: the fallbacks keep
    them, first with the remembered model and every other setting of the network at its default,
    then with the library's defaults; when those fail too, ``fatal`` says why and ``None`` is
    returned (the app ends rather than run something else)."""
    busy(f"loading {config.model}…")
    engine, whys = None, []
    if typed:
        defaults = EngineConfig()
        network = {name: getattr(defaults, name) for name in _NETWORK if name not in typed}
        attempts = [config, replace(config, **network),
                    replace(defaults, **{name: getattr(config, name) for name in typed})]
    else:
        # the defaults are the app's own, trained weights included (a trial: random weights were
        # taken, said to be "on purpose" and remembered for every later run)
        attempts = [config, replace(config, layer=None), EngineConfig()]
    attempts = [a for i, a in enumerate(attempts) if a not in attempts[:i]]
    for i, attempt in enumerate(attempts):
        try:
            engine = Engine(attempt, fallback_untrained=True)
            break
        except EigenCamError as exc:
            whys.append(str(exc))
        except Exception as exc:  # pragma: no cover - e.g. out of memory while building
            whys.append(f"cannot build {attempt.model}: {type(exc).__name__}: {exc}")
        if i == 0:
            error(whys[0])
    if engine is None and typed and fatal is not None:
        fatal(whys[min(1, len(whys) - 1)])  # as tried with the model in use, what was typed its only change
    busy("")
    return engine


def layer_list(engine: Engine, cache: dict[tuple, list], error: Say,
               frame_hw: tuple[int, int] | None = None) -> list[Layer]:
    """The engine's model's feature layers with their shapes for the input of a ``frame_hw`` frame
    (default: the last frame's), listed once per model and input size."""
    key = (engine.config.model, engine.loaded.weights, engine.input_size(frame_hw))
    layers = cache.get(key)
    if layers is None:
        try:
            layers = engine.feature_layers(frame_hw)
        except Exception as exc:
            error(f"cannot list the layers of {engine.config.model}: {exc}")
            layers = [Layer(engine.layer, "?", ())]
        if len(cache) >= 16:
            cache.clear()
        cache[key] = layers
    return list(layers)
