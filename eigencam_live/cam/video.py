"""Video state: the principal subspace carried from frame to frame, and temporal smoothing."""

from __future__ import annotations

import numpy as np
import torch

from .tail import namespace, normalize_maps

__all__ = ["SubspaceTracker", "TemporalSmoother"]


class SubspaceTracker:
    """Carries a video's principal subspace from frame to frame, in the map's positions.

    The state is the previous frame's left singular vectors ``u_k`` (the maps' directions: a map is
    ``u_k s_k``) with their signs applied. Positions, not channel loadings: every solver has ``u``,
    and the CPU solver of small maps never forms the loadings (it works on the Gram matrix of the
    positions, which ONNX Runtime computes beside the activations).

    * Sign continuity: when a component of this frame matches the previous frame's
      (``|cos| >= match``; ``u`` is centred up to rounding, so that cosine is the Pearson
      correlation of the two frames' maps) and the per-frame rule is not firm about it (its map
      correlates with the channel-summed activation at ``|r| <= FIRM``, 0.3, in :mod:`~eigencam_live.cam.tail`), its sign is chosen
      to agree with the previous one, so a near tie of the rule never flips the map between two
      frames; otherwise the per-frame rule applies (a tracker that kept every sign held a fifth of
      a real video inverted, against the rule's firm evidence, after one weak frame).
    * Warm start: the iterative solvers start from the previous frame's subspace (``X^T u``, its
      channel loadings in this frame), so fewer power iterations reach the convergence test.

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
        """``(HW, n)`` float32: the last frame's left singular vectors with their signs applied
        (zero columns for absent components), or ``None``. Edits in place are followed."""
        return self._basis

    def start(self, positions: int) -> torch.Tensor | None:
        """:attr:`basis` if it has ``positions`` rows (a map of the same size), else ``None``.
        Only the number of positions is compared: a cut or a new input size resets the tracker
        (the engine does), which a grid of the same count turned on its side would need too."""
        basis = self._basis
        return basis if basis is not None and basis.shape[0] == positions else None

    def update(self, u_signed: torch.Tensor) -> None:
        """Keep the last frame of ``u_signed (B, HW, n)`` as the basis."""
        self._basis = u_signed[-1].detach().to(torch.float32, copy=True)

    def follow(self, u: torch.Tensor, real: torch.Tensor, signs: torch.Tensor,
               firm: torch.Tensor | None = None) -> torch.Tensor:
        """Signs continuous with the previous frames, and the new basis kept.

        Args:
            u: ``(B, HW, n)`` left singular vectors of consecutive frames, unit (or zero) columns
                orthogonal to the ones up to rounding (a tensor, or a numpy array from the CPU solver: the same
                code runs on either).
            real: ``(B, n)`` bool, the components above the noise floor (the others never match).
            signs: ``(B, n)`` signs from the per-frame rule; overwritten where a component matches
                the previous frame's and the rule is not firm.
            firm: ``(B, n)`` bool, where the rule decides by itself (see the class); ``None``: nowhere.

        Returns:
            ``signs``.
        """
        xp = namespace(u)
        prev = before = self.start(u.shape[1])
        if prev is not None:  # the engine may have moved to another device
            prev = before = prev.to(u.device) if xp is torch else (prev if prev.is_cpu else prev.cpu()).numpy()
        n = u.shape[2]
        for i in range(u.shape[0]):
            if prev is not None:
                m = min(prev.shape[1], n)
                cos = xp.sum(u[i, :, :m] * prev[:, :m], axis=0)  # unit vectors: a cosine (0 against a blank frame)
                # (a component below the noise floor may match by chance: its sign never shows)
                follows = abs(cos) >= self.match
                if firm is not None:
                    follows = follows & ~firm[i, :m]
                signs[i, :m] = xp.where(follows, xp.sign(cos), signs[i, :m])
            prev = u[i] * (signs[i] * real[i])
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
