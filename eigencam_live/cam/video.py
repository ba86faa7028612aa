"""Video state: the principal subspace carried from frame to frame, and temporal smoothing."""

from __future__ import annotations

import numpy as np
import torch

from .tail import namespace, normalize_maps

__all__ = ["SubspaceTracker", "TemporalSmoother"]


class SubspaceTracker:
    """Carries a video's principal subspace from frame to frame.

    * Warm start: the previous frame's right singular vectors seed the randomized sketch, so fewer
      power iterations reach the convergence test.
    * Sign continuity: when a component of this frame matches the previous frame's
      (``|cos| >= match``), its sign is chosen to agree with it, so the map never flips between two
      frames of the same scene; otherwise the per-frame rule applies.

    For a batch, frames are taken as consecutive: each frame is aligned with the previous one
    within the batch, and the first with the last frame of the previous batch. A blank last frame
    (no variance) keeps the previous basis. Call :meth:`reset` on a cut or a seek.

    The state is one tensor, :attr:`basis`.
    """

    def __init__(self, match: float = 0.5) -> None:
        self.match = match
        self._basis: torch.Tensor | None = None

    def reset(self) -> None:
        self._basis = None

    @property
    def basis(self) -> torch.Tensor | None:
        """``(C, n)`` float32: the last frame's right singular vectors with their signs applied
        (zero columns for absent components), or ``None``. Edits in place are followed."""
        return self._basis

    def start(self, channels: int) -> torch.Tensor | None:
        """:attr:`basis` if it has ``channels`` rows (the same layer), else ``None``."""
        basis = self._basis
        return basis if basis is not None and basis.shape[0] == channels else None

    def update(self, v_signed: torch.Tensor) -> None:
        """Keep the last frame of ``v_signed (B, C, n)`` as the basis."""
        self._basis = v_signed[-1].detach().to(torch.float32, copy=True)

    def follow(self, v: torch.Tensor, real: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
        """Signs continuous with the previous frames, and the new basis kept.

        Args:
            v: ``(B, C, n)`` unit right singular vectors of consecutive frames (a tensor, or a
                numpy array from the CPU solver: the same code runs on either).
            real: ``(B, n)`` bool, the components above the noise floor (the others never match).
            signs: ``(B, n)`` signs from the per-frame rule; overwritten where a component matches
                the previous frame's.

        Returns:
            ``signs``.
        """
        xp = namespace(v)
        prev = before = self.start(v.shape[1])
        if prev is not None:  # the engine may have moved to another device
            prev = before = prev.to(v.device) if xp is torch else (prev if prev.is_cpu else prev.cpu()).numpy()
        n = v.shape[2]
        for i in range(v.shape[0]):
            if prev is not None:
                m = min(prev.shape[1], n)
                cos = xp.sum(v[i, :, :m] * prev[:, :m], axis=0)  # unit vectors: a cosine (0 against a blank frame)
                # (a component below the noise floor may match by chance: its sign never shows)
                signs[i, :m] = xp.where(abs(cos) >= self.match, xp.sign(cos), signs[i, :m])
            prev = v[i] * (signs[i] * real[i])
        if before is not None and before.shape == prev.shape:
            # a blank last frame keeps the basis it was given (decided on the device: no host sync)
            prev = xp.where(real[-1, 0], prev, before)
        # a new tensor, ours alone
        self._basis = prev.to(torch.float32) if xp is torch else torch.from_numpy(prev.astype(np.float32, copy=False))
        return signs


class TemporalSmoother:
    """Exponential smoothing of maps and of their normalisation range, against video flicker.

    ``strength`` in ``[0, 1)``: 0 disables smoothing; 0.8 keeps 80 % of the previous state each frame.
    It works on the rectified projections (before normalisation), so the colour scale follows a
    smoothed range instead of jumping with each frame's own min and max.
    """

    def __init__(self, strength: float = 0.0) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"smoothing must be in [0, 1). Got {strength!r}")
        self.strength = float(strength)
        self._map: torch.Tensor | None = None
        self._hi: torch.Tensor | None = None

    def reset(self) -> None:
        self._map = None
        self._hi = None

    def __call__(self, projections: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` signed projections (frames in order) -> ``(B, H, W)`` maps in ``[0, 1]``."""
        # capped at float32's largest number: projections of activations of ~1e37 and more
        # overflow to inf, and the running average must stay finite
        rect = torch.relu(projections.to(torch.float32)).clamp_max_(torch.finfo(torch.float32).max)
        if self.strength == 0.0:
            return normalize_maps(rect)
        a = self.strength
        out = torch.empty_like(rect)
        for i in range(rect.shape[0]):
            cur = rect[i]
            hi = cur.max()
            if self._map is None or self._map.shape != cur.shape:
                self._map, self._hi = cur, hi
            else:
                self._map = a * self._map + (1 - a) * cur
                self._hi = a * self._hi + (1 - a) * hi
            scale = torch.maximum(self._hi, self._map.max())
            out[i] = torch.where(scale > 0, self._map / torch.where(scale > 0, scale, torch.ones_like(scale)), torch.zeros_like(cur))
        return out.clamp_(0.0, 1.0)
