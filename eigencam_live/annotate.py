"""Headless pipeline: a video file -> engine -> render -> H.264 file, with stats and heatmaps.

Three stages overlap in three threads, joined by bounded queues::

    capture thread (decode)  ->  inference thread (Engine.submit)  ->  encoder thread (result + x264)

On CUDA the engine draws the pictures on the GPU and the encoder thread waits for each batch while
the next one is uploaded; on the CPU the encoder thread draws them (``PendingFrames.result``).

The caller's thread only watches: it updates the progress bar and turns Ctrl-C
(``KeyboardInterrupt``) into a clean stop: decoding stops, the frames already through the network
are written, and the file is finished (playable) with the frames so far. A failure in any stage
stops the others, removes the unfinished file and is raised in the caller's thread.
"""

from __future__ import annotations

import csv
import glob as globlib
import os
import queue
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine import Engine, PendingFrames
from .errors import SinkError, SourceError
from .render import RenderConfig
from .video import VIDEO_EXTENSIONS, Capture, FileSource, Frame, VideoSink, open_source

__all__ = ["OUTPUT_SUFFIX", "AnnotateResult", "Job", "annotate_file", "expand_inputs", "plan_jobs"]

#: ``clip.mp4`` is annotated as ``clip.eigencam.mp4`` unless told otherwise.
OUTPUT_SUFFIX = ".eigencam.mp4"
_POLL = 0.1  # seconds: every blocking call in this module wakes at least this often


@dataclass(frozen=True)
class Job:
    """One input file and where its outputs go."""

    input: Path
    output: Path
    stats: Path | None = None
    heatmaps: Path | None = None


@dataclass
class AnnotateResult:
    """What :func:`annotate_file` did.

    Attributes:
        frames: frames written to the output.
        seconds: wall time of the pipeline.
        interrupted: stopped by Ctrl-C; the output holds the ``frames`` processed so far.
        warning: the input is damaged or cut off (what decoded was annotated).
        audio: the output has the input's audio; ``audio_note`` says when it was re-encoded or dropped.
    """

    input: Path
    output: Path
    frames: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    warning: str | None = None
    audio: bool = False
    audio_note: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# ------------------------------------------------------------------------------------------------
# Inputs and outputs
# ------------------------------------------------------------------------------------------------
def _is_video_name(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS) and not path.lower().endswith(OUTPUT_SUFFIX)


def expand_inputs(specs: list[str]) -> list[Path]:
    """Files, folders (their videos, not recursive) and globs -> a list of files, in order.

    Folders and globs skip earlier outputs (``*.eigencam.mp4``). Named files are taken as they are
    (whether they hold video is found out when they are opened).

    Raises:
        SourceError: a missing file, a folder without videos, a glob that matches nothing.
    """
    out: list[Path] = []
    for spec in specs:
        path = os.path.expanduser(spec)
        if os.path.isdir(path):
            found = sorted(p for p in os.listdir(path) if _is_video_name(p) and os.path.isfile(os.path.join(path, p)))
            if not found:
                raise SourceError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) in folder {spec}")
            out += [Path(path) / p for p in found]
        elif os.path.exists(path):
            if not os.path.isfile(path):
                raise SourceError(f"not a regular file: {spec}")
            out.append(Path(path))
        elif spec.strip().isdigit():
            # A webcam index: say whether that camera exists, and that annotate wants files.
            open_source(int(spec)).close()  # raises "no camera at index N" when there is none
            raise SourceError(f"{spec} is a webcam; annotate takes video files (use the app for live input)")
        elif any(c in path for c in "*?["):
            found = sorted(p for p in globlib.glob(path) if _is_video_name(p) and os.path.isfile(p))
            if not found:
                raise SourceError(f"no videos match {spec}")
            out += [Path(p) for p in found]
        else:
            raise SourceError(f"no such file: {spec}")
    unique: list[Path] = []
    for p in out:
        if p.resolve() not in {u.resolve() for u in unique}:
            unique.append(p)
    return unique


def _derived(path: Path | None, input_path: Path, many: bool) -> Path | None:
    """``--stats s.csv`` for several inputs becomes ``s.<input>.csv`` for each."""
    if path is None or not many:
        return path
    return path.with_name(f"{path.stem}.{input_path.stem}{path.suffix}")


def plan_jobs(
    specs: list[str],
    output: str | None = None,
    *,
    force: bool = False,
    stats: str | None = None,
    heatmaps: str | None = None,
) -> list[Job]:
    """Resolve inputs and outputs, and check them all before any work starts.

    Args:
        specs: files, folders or globs.
        output: a file (one input), a folder (created if needed), or ``None`` (beside each input,
            as ``NAME.eigencam.mp4``). A path ending in ``/`` is always a folder.
        force: allow overwriting existing outputs (never the input itself).

    Raises:
        SourceError: bad inputs. SinkError: an output that exists (without ``force``), equals an
        input, or lies in a folder that cannot be written.
    """
    inputs = expand_inputs(specs)
    many = len(inputs) > 1
    folder: Path | None = None
    if output is not None:
        out = Path(os.path.expanduser(output))
        if many or out.is_dir() or output.endswith(("/", os.sep)):
            folder = out
            if folder.exists() and not folder.is_dir():
                raise SinkError(f"output {folder} is not a folder (several inputs need an output folder)")
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SinkError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
    jobs = []
    targets: set[Path] = set()
    for inp in inputs:
        if folder is not None:
            target = folder / (inp.stem + OUTPUT_SUFFIX)
        elif output is not None:
            target = Path(os.path.expanduser(output))
        else:
            target = inp.with_name(inp.stem + OUTPUT_SUFFIX)
        if target.resolve() == inp.resolve() or (target.exists() and os.path.samefile(target, inp)):
            raise SinkError(f"output {target} is the input: refusing to write over it")
        if target.resolve() in targets:
            raise SinkError(f"two inputs would write the same output {target}")
        targets.add(target.resolve())
        if target.is_dir():
            raise SinkError(f"output {target} is a folder")
        if target.exists() and not force:
            raise SinkError(f"{target} exists (use --force to overwrite)")
        # Open each input now (a header read): a text file named .mp4 is refused before a model
        # is built or any output written.
        open_source(str(inp)).close()
        job = Job(inp, target, _derived(Path(stats) if stats else None, inp, many),
                  _derived(Path(heatmaps) if heatmaps else None, inp, many))
        for extra in (job.stats, job.heatmaps):
            if extra is not None and extra.is_dir():
                raise SinkError(f"{extra} is a folder (--stats and --heatmaps take file names)")
            if extra is not None and extra.exists() and not force:
                raise SinkError(f"{extra} exists (use --force to overwrite)")
            if extra is not None and extra.resolve() == inp.resolve():
                raise SinkError(f"{extra} is the input: refusing to write over it")
        jobs.append(job)
    for parent in sorted({p.parent for j in jobs for p in (j.output, j.stats, j.heatmaps) if p is not None}):
        _check_writable(parent)
    return jobs


def _check_writable(folder: Path) -> None:
    if not folder.is_dir():
        raise SinkError(f"output folder {folder} does not exist")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise SinkError(f"cannot write in output folder {folder}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------------------------------------
# The pipeline
# ------------------------------------------------------------------------------------------------
_END = object()


class _Pipeline:
    """The threads of one file's annotation; see the module docstring."""

    def __init__(self, engine: Engine, capture: Capture, sink: VideoSink, look: RenderConfig, batch_size: int,
                 keep_stats: bool, keep_maps: bool, max_frames: int | None = None) -> None:
        self.engine, self.capture, self.sink, self.look = engine, capture, sink, look
        self.batch_size = batch_size
        self.max_frames = max_frames
        self.limited = False  # stopped at max_frames
        self.keep_stats, self.keep_maps = keep_stats, keep_maps
        self.results: queue.Queue = queue.Queue(maxsize=4)
        self.soft_stop = threading.Event()  # Ctrl-C: stop reading, write what was inferred
        self.abort = threading.Event()  # an error: everyone stops now
        self.error: BaseException | None = None
        self.written = 0
        self.stats: list[tuple] = []
        self.maps: list[np.ndarray] = []
        self.pts: list[float] = []
        self.threads = [
            threading.Thread(target=self._guard, args=(self._infer,), name="annotate-infer", daemon=True),
            threading.Thread(target=self._guard, args=(self._encode,), name="annotate-encode", daemon=True),
        ]

    def start(self) -> None:
        self.capture.start()
        for t in self.threads:
            t.start()

    def _guard(self, body) -> None:
        try:
            body()
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            self.abort.set()

    def _put(self, item: object) -> bool:
        while not self.abort.is_set():
            try:
                self.results.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _infer(self) -> None:
        batch: list[Frame] = []
        taken = 0
        try:
            while not self.abort.is_set() and not self.soft_stop.is_set():
                if self.max_frames is not None and taken >= self.max_frames:
                    self.limited = True
                    frame = None
                else:
                    try:
                        frame = self.capture.read(timeout=_POLL)
                    except TimeoutError:
                        continue
                if frame is not None:
                    taken += 1
                    batch.append(frame)
                if batch and (frame is None or len(batch) >= self.batch_size):
                    results = self.engine.submit([f.image for f in batch], self.look)
                    if not self._put((batch, results)):
                        return
                    batch = []
                if frame is None:
                    break
        finally:
            self._put(_END)

    def _encode(self) -> None:
        while not self.abort.is_set():
            try:
                item = self.results.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is _END:
                return
            frames: list[Frame]
            pending: PendingFrames
            frames, pending = item
            for f, r in zip(frames, pending.result(), strict=True):
                if self.abort.is_set():  # the caller is about to close or remove the file
                    return
                self.sink.write(r.picture, f.pts)
                if self.keep_stats:
                    label, prob = r.predictions[0] if r.predictions else ("", 0.0)
                    self.stats.append((f.index, f.pts, label, prob, r.explained_component, r.peak[0], r.peak[1]))
                if self.keep_maps:
                    self.maps.append(r.cam.astype(np.float16))
                    self.pts.append(f.pts)
                self.written += 1

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def join_until_done(self) -> None:
        """Wait for both threads to end (each stops within one batch once ``abort`` is set), so
        the sink is closed or removed only when nobody writes to it any more."""
        while self.alive():
            self.join(_POLL)

    def join(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))


def annotate_file(
    engine: Engine,
    job: Job,
    look: RenderConfig | None = None,
    *,
    batch_size: int = 4,
    overwrite: bool = False,
    progress: bool = True,
    crf: int = 20,
    preset: str = "veryfast",
    max_frames: int | None = None,
) -> AnnotateResult:
    """Annotate one video file with Eigen-CAM heatmaps.

    Args:
        engine: the engine (its video state is reset first).
        job: input, output and optional stats (CSV) and heatmaps (NPZ) paths.
        look: how maps are drawn.
        batch_size: frames per forward pass.
        overwrite: replace existing outputs.
        progress: show a tqdm bar (frames, fps, ETA) on stderr.
        crf, preset: x264 quality and speed.
        max_frames: annotate only the first frames (audio is then cut to the same length).

    Returns:
        an :class:`AnnotateResult`; ``interrupted`` when Ctrl-C stopped it (the output then holds
        the frames processed so far and plays).

    Raises:
        SourceError, SinkError, ConfigError...: the unfinished output is removed.
    """
    look = look or RenderConfig()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Got {batch_size}")
    source = open_source(str(job.input))
    if not isinstance(source, FileSource):
        source.close()
        raise SourceError(f"{job.input} is not a video file")
    info = source.info
    width = info.width * (2 if look.view == "side-by-side" else 1)
    try:
        sink = VideoSink(job.output, width=width, height=info.height, fps=info.rate,
                         audio_from=str(job.input) if info.has_audio else None, overwrite=overwrite, crf=crf,
                         preset=preset)
    except BaseException:
        source.close()
        raise
    try:
        engine.reset()
        capture = Capture(source)
        pipe = _Pipeline(engine, capture, sink, look, batch_size, job.stats is not None, job.heatmaps is not None,
                         max_frames)
        result = AnnotateResult(job.input, job.output)
        total = info.frame_count if max_frames is None else min(max_frames, info.frame_count or max_frames)
        bar = _progress_bar(total, job.input.name, progress)
    except BaseException:  # nothing started yet: leave no temporary file and no open input
        sink.abort()
        source.close()
        raise
    start = time.perf_counter()
    try:
        pipe.start()
        try:
            while pipe.alive():
                pipe.join(_POLL)
                bar.update(pipe.written - bar.n)
        except KeyboardInterrupt:
            result.interrupted = True
            pipe.soft_stop.set()
            capture.stop(timeout=0.5)
            pipe.join(5.0)  # at most one batch in the network, and the frames queued for writing
            if pipe.alive():
                pipe.abort.set()
                pipe.join_until_done()
        bar.update(pipe.written - bar.n)
        if pipe.error is not None:
            raise pipe.error
        result.seconds = time.perf_counter() - start
        capture.stop()
        result.warning = capture.warning
        if pipe.written == 0:
            sink.abort()
            if result.interrupted:
                return result
            raise SourceError(f"{job.input} holds no decodable video frames")
        sink.close(audio_to_end=not (result.interrupted or pipe.limited or result.warning))
    except BaseException:
        pipe.abort.set()
        capture.stop()
        pipe.join_until_done()
        sink.abort()
        raise
    finally:
        bar.close()
    result.frames = pipe.written
    result.audio = sink.audio_packets > 0
    result.audio_note = sink.audio_note
    if job.stats is not None:
        _write_stats(job.stats, pipe.stats)
    if job.heatmaps is not None:
        _write_heatmaps(job.heatmaps, pipe.maps, pipe.pts)
    return result


def _progress_bar(total: int | None, name: str, enabled: bool):
    import sys

    from tqdm import tqdm

    # Redirected to a file or a pipe, a bar redrawn ten times a second is only noise.
    interval = 0.2 if sys.stderr.isatty() else 5.0
    return tqdm(total=total, desc=name, unit="frame", disable=not enabled, dynamic_ncols=True, leave=True,
                smoothing=0.1, mininterval=interval, file=sys.stderr)


def _replace_atomically(path: Path, tmp: Path, write) -> None:
    """``write(tmp)`` then rename it to ``path``; on any failure remove ``tmp`` and raise SinkError."""
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise SinkError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _write_stats(path: Path, rows: list[tuple]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["index", "pts", "label", "probability", "explained", "peak_x", "peak_y"])
            for index, pts, label, prob, explained, px, py in rows:
                w.writerow([index, f"{pts:.6f}", label, f"{prob:.6f}", f"{explained:.6f}", px, py])

    _replace_atomically(path, path.with_name(f".{path.name}.part"), write)


def _write_heatmaps(path: Path, maps: list[np.ndarray], pts: list[float]) -> None:
    """``maps``: ``(N, h, w)`` float16 in ``[0, 1]`` at feature resolution; ``pts``: ``(N,)`` seconds."""
    stack = np.stack(maps) if maps else np.zeros((0, 0, 0), np.float16)
    _replace_atomically(path, path.with_name(f".{path.stem}.part.npz"),
                        lambda tmp: np.savez_compressed(tmp, maps=stack, pts=np.asarray(pts, dtype=np.float64)))
