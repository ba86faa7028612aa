"""Exceptions for mistakes a user can make. Front ends turn each into one clear line.

Every message says what was wrong and what is allowed.
"""

from __future__ import annotations


class EigenCamError(Exception):
    """Base class: a user-facing error with a one-line message."""


class ModelError(EigenCamError):
    """Unknown model name."""


class LayerNotFoundError(EigenCamError):
    """A target layer that does not exist or does not yield a spatial feature map."""


class WeightsError(EigenCamError):
    """A weights file that is missing, unreadable or does not fit the model."""


class WeightsUnavailableError(WeightsError):
    """ImageNet weights are neither cached nor downloadable (offline). Fall back to ``none``."""


class ConfigError(EigenCamError, ValueError):
    """A setting outside its allowed range (names the field, the value and what is allowed).

    Attributes:
        field: the setting's name (an :class:`~eigencam_live.engine.EngineConfig` or
            :class:`~eigencam_live.render.RenderConfig` field), or ``None`` when no single one is
            to blame. Front ends turn it into their own name for it (``--short-side``, a combo box).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class SourceError(EigenCamError):
    """A frame source that cannot be opened or read."""


class SinkError(EigenCamError):
    """An output that cannot be written."""
