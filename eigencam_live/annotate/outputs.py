"""The files beside an annotated video or images: per-frame stats (CSV) and maps (NPZ), each written
to a temporary name and renamed into place; and the progress bar."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from eigencam_live.engine import FrameResult
from eigencam_live.errors import SinkError

__all__ = ["Tables", "progress_bar", "replace_atomically"]


def progress_bar(total: int | None, name: str, enabled: bool, unit: str = "frame"):
    """A tqdm bar on stderr (count, rate, ETA); quiet when redirected."""
    from tqdm import tqdm

    # Redirected to a file or a pipe, a bar redrawn ten times a second is only noise.
    interval = 0.2 if sys.stderr.isatty() else 5.0
    return tqdm(total=total, desc=name, unit=unit, disable=not enabled, dynamic_ncols=True, leave=True,
                smoothing=0.1, mininterval=interval, file=sys.stderr)


def replace_atomically(path: Path, tmp: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` then rename it to ``path``; on any failure remove ``tmp`` and raise SinkError."""
    try:
        if write(tmp) is False:  # cv2.imwrite says False instead of raising
            raise OSError(f"cannot encode {path.suffix or 'the file'}")
        os.replace(tmp, path)
    except OSError as exc:
        raise SinkError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


class Tables:
    """Collects one row (and optionally one map) per frame or image, then writes them.

    The first column says which: ``index`` and ``pts`` (seconds) for a video, ``file`` for images.
    The NPZ holds ``maps`` ``(N, h, w)`` float16 in ``[0, 1]`` at feature resolution with ``pts``
    ``(N,)`` for a video; images, whose maps differ in size, get one array per output file name
    (``maps/NAME``) and ``files``.
    """

    def __init__(self, stats: Path | None, heatmaps: Path | None, *, images: bool = False) -> None:
        self.stats_path, self.heatmaps_path, self.images = stats, heatmaps, images
        self.rows: list[list[object]] = []
        self.maps: list[np.ndarray] = []
        self.keys: list[object] = []

    def add(self, key: float | str, result: FrameResult, index: int = 0) -> None:
        """``key``: the frame's pts (seconds) or the image's name."""
        if self.stats_path is not None:
            label, prob = result.predictions[0] if result.predictions else ("", 0.0)
            where = [key] if self.images else [index, f"{key:.6f}"]
            self.rows.append([*where, label, f"{prob:.6f}", f"{result.explained_component:.6f}", *result.peak])
        if self.heatmaps_path is not None:
            self.maps.append(result.cam.astype(np.float16))
            self.keys.append(key)

    def write(self) -> None:
        if self.stats_path is not None:
            self._write_stats(self.stats_path)
        if self.heatmaps_path is not None:
            self._write_maps(self.heatmaps_path)

    def _write_stats(self, path: Path) -> None:
        head = ["file"] if self.images else ["index", "pts"]

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow([*head, "label", "probability", "explained", "peak_x", "peak_y"])
                w.writerows(self.rows)

        replace_atomically(path, path.with_name(f".{path.name}.part"), write)

    def _write_maps(self, path: Path) -> None:
        if self.images:
            arrays = {f"maps/{k}": m for k, m in zip(self.keys, self.maps, strict=True)}
            arrays["files"] = np.asarray(self.keys, dtype=str)
        else:
            stack = np.stack(self.maps) if self.maps else np.zeros((0, 0, 0), np.float16)
            arrays = {"maps": stack, "pts": np.asarray(self.keys, dtype=np.float64)}
        replace_atomically(path, path.with_name(f".{path.stem}.part.npz"),
                           lambda tmp: np.savez_compressed(tmp, **arrays))
