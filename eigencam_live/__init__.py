"""eigencam-live: Eigen-CAM heatmaps for live video. The library never imports Qt."""

from .cam import CamResult, SubspaceTracker, TemporalSmoother, eigen_cam
from .engine import Engine, EngineConfig, FrameResult
from .errors import (
    ConfigError,
    EigenCamError,
    LayerNotFoundError,
    ModelError,
    SinkError,
    SourceError,
    WeightsError,
    WeightsUnavailableError,
)
from .models import DETECTORS, MODELS, ActivationCapture, Detection, LoadedModel, from_module, load_model
from .render import COLORMAPS, VIEWS, RenderConfig, render

__all__ = [
    "COLORMAPS",
    "DETECTORS",
    "MODELS",
    "VIEWS",
    "ActivationCapture",
    "CamResult",
    "ConfigError",
    "Detection",
    "EigenCamError",
    "Engine",
    "EngineConfig",
    "FrameResult",
    "LayerNotFoundError",
    "LoadedModel",
    "ModelError",
    "RenderConfig",
    "SinkError",
    "SourceError",
    "SubspaceTracker",
    "TemporalSmoother",
    "WeightsError",
    "WeightsUnavailableError",
    "eigen_cam",
    "from_module",
    "load_model",
    "render",
]
__version__ = "0.1.0"
