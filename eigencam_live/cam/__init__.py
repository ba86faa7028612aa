"""Eigen-CAM math, pure tensors in and out.

* :mod:`.eigencam` - :func:`eigen_cam`, the entry point: checks, picks a solver, applies the tail.
* :mod:`.solvers` - exact, CPU Gram, randomized and sync-free solvers, all returning
  :class:`~.solvers.Components` ``(u, s, v, energy, total, spread)``.
* :mod:`.tail` - the one place the definition is applied: noise floor, sign rule, tracker, ReLU,
  normalisation, explained variance; :class:`CamResult`.
* :mod:`.video` - :class:`SubspaceTracker` (state across frames) and :class:`TemporalSmoother`.
* :mod:`.linalg` - small linear algebra that never waits for the host (the GPU solver's parts).
"""

from .eigencam import EXACT_MAX_DIM, METHODS, SPECTRUM_SIZE, eigen_cam
from .solvers import Gram
from .tail import NOISE, CamResult, normalize_maps
from .video import SubspaceTracker, TemporalSmoother

__all__ = [
    "EXACT_MAX_DIM",
    "METHODS",
    "NOISE",
    "SPECTRUM_SIZE",
    "CamResult",
    "Gram",
    "SubspaceTracker",
    "TemporalSmoother",
    "eigen_cam",
    "normalize_maps",
]
