"""The files beside an annotated video or images: per-frame stats (CSV) and maps (NPZ), each written
to a temporary name and renamed into place; the final rename that never replaces a file another run
put there meanwhile; the clean-up of what runs that died left behind; and the progress bar."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np

from eigencam_live.engine import FrameResult
from eigencam_live.errors import SinkError
from eigencam_live.processes import alive
from eigencam_live.renames import rename_no_replace

__all__ = ["Tables", "part_name", "partial_name", "progress_bar", "remove_stale_parts", "replace_atomically"]

def progress_bar(total: int | None, name: str, enabled: bool, unit: str = "frame"):
    """A tqdm bar on stderr (count, rate, ETA); quiet when redirected."""
    from tqdm import tqdm

    # Redirected to a file or a pipe, a bar redrawn ten times a second is only noise.
    interval = 0.2 if sys.stderr.isatty() else 5.0
    return tqdm(total=total, desc=name, unit=unit, disable=not enabled, dynamic_ncols=True, leave=True,
                smoothing=0.1, mininterval=interval, file=sys.stderr)


def part_name(path: Path, suffix: str | None = None) -> Path:
    """The hidden name ``path`` is written under first: ``.STEM.part<PID>SUFFIX`` beside it, this
    process's own (two runs never write one file), and :func:`remove_stale_parts` knows it."""
    return path.with_name(f".{path.stem}.part{os.getpid()}{path.suffix if suffix is None else suffix}")


def replace_atomically(path: Path, tmp: Path, write: Callable[[Path], object], *, overwrite: bool = True) -> None:
    """``write(tmp)`` then rename it to ``path``; on any failure remove ``tmp`` and raise SinkError.

    ``overwrite=False``: a file that exists at ``path`` by then (another run's) is never replaced
    (:func:`rename_no_replace`), and SinkError says so.
    """
    try:
        if write(tmp) is False:  # cv2.imwrite says False instead of raising
            raise OSError(f"cannot encode {path.suffix or 'the file'}")
        if overwrite:
            os.replace(tmp, path)
        else:
            rename_no_replace(tmp, path)
    except FileExistsError:
        raise SinkError(f"{path} appeared while this run was writing it (another run?): left as it is") from None
    except OSError as exc:
        raise SinkError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def partial_name(target: Path) -> Path:
    """A free name beside ``target`` for an interrupted run's part: ``STEM.partial.mp4``, ``-2``..."""
    for i in range(1, 1000):
        name = target.with_name(f"{target.stem}.partial{'' if i == 1 else f'-{i}'}{target.suffix}")
        if not name.exists():
            return name
    return target.with_name(f"{target.stem}.partial-{os.getpid()}{target.suffix}")


def publish(finished: Path, target: Path, overwrite: bool) -> None:
    """Give the finished file the output's name: replacing a file there only with ``overwrite``.

    Without it the rename is atomic and never replaces: if another run (or anyone) created the
    output since this one started, that file stays, this run's file is kept beside it as
    :func:`beside_name` (its ``kept`` attribute; removed where even that name is taken) and
    SinkError says so.
    """
    try:
        if overwrite:
            os.replace(finished, target)
            return
        try:
            rename_no_replace(finished, target)
            return
        except FileExistsError:
            pass
        kept = beside_name(target)
        try:
            rename_no_replace(finished, kept)
        except FileExistsError:
            finished.unlink(missing_ok=True)
            raise SinkError(f"{target} appeared while this run was writing it (another run?): left as it is, "
                            f"and this run's output was removed ({kept} exists too)") from None
        error = SinkError(f"{target} appeared while this run was writing it (another run?): left as it is; "
                          f"this run's output is kept as {kept}")
        error.kept = kept
        raise error
    except OSError as exc:
        raise SinkError(f"cannot finish {target}: {exc.strerror or exc}") from None


def beside_name(path: Path) -> Path:
    """Where a run keeps its file whose name another run took meanwhile: ``STEM.<PID>SUFFIX``."""
    return path.with_name(f"{path.stem}.{os.getpid()}{path.suffix}")


def find_parts(target: Path, keep: Collection[Path] = ()) -> list[Path]:
    """The files beside ``target`` named as :func:`partial_name` names a stopped run's part
    (``STEM.partial.mp4``, ``STEM.partial-2.mp4``...), except those in ``keep`` (the run's inputs
    and its other outputs: a video named ``x.partial.mp4`` may be an input). Said, never removed,
    once ``target`` holds the whole input: a name says nothing of who wrote the file."""
    pattern = re.compile(rf"{re.escape(target.stem)}\.partial(?:-\d+)?{re.escape(target.suffix)}")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    kept = {os.path.realpath(p) for p in keep}
    return [target.parent / name for name in sorted(names)
            if pattern.fullmatch(name) and (target.parent / name).is_file()
            and os.path.realpath(target.parent / name) not in kept]


def remove_stale_parts(target: Path) -> list[Path]:
    """Remove what annotate runs that died (killed, power cut) left beside ``target``: the hidden
    part files ``.STEM.part<PID>SUFFIX`` and work folders ``.STEM.part<PID>-XXXX`` of processes that
    no longer exist. Those of live processes, this one's included, are left alone.

    A PID is only meaningful on this machine: a folder shared by several machines is assumed to
    have one writer per target at a time.

    Returns:
        what was removed.
    """
    pattern = re.compile(rf"\.{re.escape(target.stem)}\.part(\d+)(?:{re.escape(target.suffix)}|-[A-Za-z0-9_]+)?")
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in sorted(names):
        found = pattern.fullmatch(name)
        if found is None or alive(int(found.group(1))):
            continue
        path = target.parent / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue  # another run cleaning up at the same time, or not ours to remove
        removed.append(path)
    return removed


class Tables:
    """Collects one row (and optionally one map) per frame or image, then writes them.

    The first column says which: ``index`` and ``pts`` (seconds) for a video, ``file`` (the
    output's name) and ``input`` (the image read, as named) for images; a detector's rows end with
    its number of ``boxes``. The NPZ holds ``maps`` ``(N, h, w)`` float16 in ``[0, 1]`` at feature
    resolution with ``pts`` ``(N,)`` for a video; images, whose maps differ in size, get one array
    per output file name (``maps/NAME``), ``files`` and ``inputs``. The JSON lines file holds one
    object per frame, ``{"index", "pts", "boxes": [{"box": [x0, y0, x1, y1], "label", "score"}]}``
    in frame pixels (images: ``{"file", "input", "boxes"}``).
    """

    def __init__(self, stats: Path | None, heatmaps: Path | None, *, detections: Path | None = None,
                 images: bool = False, overwrite: bool = True) -> None:
        self.stats_path, self.heatmaps_path, self.detections_path = stats, heatmaps, detections
        self.images = images
        self.overwrite = overwrite  # False: a file another run put there meanwhile is not replaced
        self.rows: list[list[object]] = []
        self.maps: list[np.ndarray] = []
        self.keys: list[object] = []
        self.inputs: list[str] = []  # (images: each one's input, beside its output's name)
        self.lines: list[str] = []
        self.detector = False

    def add(self, key: float | str, result: FrameResult, index: int = 0, source: str = "") -> None:
        """``key``: the frame's pts (seconds) or the image's output name; ``source``: the image's
        input (rows joined to a ground truth by it: a trial found the output's name alone awkward)."""
        boxes = result.detections
        self.detector = self.detector or boxes is not None
        if self.stats_path is not None:
            # a detector's best box; no prediction (a backbone, no box): both cells empty, not a probability of 0
            label, prob = (result.predictions[0][0], f"{result.predictions[0][1]:.6f}") if result.predictions else ("", "")
            where = [key, source] if self.images else [index, f"{key:.6f}"]
            count = [] if boxes is None else [len(boxes)]
            self.rows.append([*where, label, prob, f"{result.explained_component:.6f}", *result.peak, *count])
        if self.heatmaps_path is not None:
            self.maps.append(result.cam.astype(np.float16))
            self.keys.append(key)
            self.inputs.append(source)
        if self.detections_path is not None:
            where = {"file": key, "input": source} if self.images else {"index": index, "pts": round(float(key), 6)}
            self.lines.append(json.dumps({**where, "boxes": [d.as_dict() for d in boxes or []]}))

    def write(self) -> None:
        if self.stats_path is not None:
            self._write_stats(self.stats_path)
        if self.heatmaps_path is not None:
            self._write_maps(self.heatmaps_path)
        if self.detections_path is not None:
            lines = self.lines

            def write(tmp: Path) -> None:
                tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")

            replace_atomically(self.detections_path, part_name(self.detections_path), write, overwrite=self.overwrite)

    def _write_stats(self, path: Path) -> None:
        head = ["file", "input"] if self.images else ["index", "pts"]
        tail = ["boxes"] if self.detector else []

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow([*head, "label", "probability", "explained", "peak_x", "peak_y", *tail])
                w.writerows(self.rows)

        replace_atomically(path, part_name(path), write, overwrite=self.overwrite)

    def _write_maps(self, path: Path) -> None:
        if self.images:
            arrays = {f"maps/{k}": m for k, m in zip(self.keys, self.maps, strict=True)}
            arrays["files"] = np.asarray(self.keys, dtype=str)
            arrays["inputs"] = np.asarray(self.inputs, dtype=str)
        else:
            stack = np.stack(self.maps) if self.maps else np.zeros((0, 0, 0), np.float16)
            arrays = {"maps": stack, "pts": np.asarray(self.keys, dtype=np.float64)}
        replace_atomically(path, part_name(path, ".npz"),  # numpy adds .npz to any other name
                           lambda tmp: np.savez_compressed(tmp, **arrays), overwrite=self.overwrite)
