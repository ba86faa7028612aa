"""A video file -> engine -> render -> H.264 file, with stats and heatmaps.

Four stages overlap in four threads, joined by bounded queues::

    capture (decode)  ->  prepare (Engine.prepare)  ->  inference (Engine.submit)  ->  encoder (result + x264)

The network's thread only runs the network: the next batch is resized and normalised beside it
(on two cores, 0.6 ms a frame moved off the stage that sets the pace).

On CUDA the engine draws the pictures on the GPU and the encoder thread waits for each batch while
the next one is uploaded; on the CPU the encoder thread draws them (``PendingFrames.result``).

The caller's thread only watches: it updates the progress bar and, while the run lasts, holds
SIGINT and SIGTERM (:func:`~.stops.stop_signals_held`; the handlers there before are called when it ends), so a
stop is a request, never an exception half-way through a step: decoding stops, the frames already
through the network are written, and the file is finished (playable) with the frames so far.
Another signal stops the wait for the frames still in the network. A signal after the last frame
went in lets the whole file be finished, and the result says that a stop was asked for
(``stop_requested``). A failure in any stage stops the others, removes the unfinished file and is
raised in the caller's thread.

The file is written in a hidden work folder beside the output, ``.STEM.part<PID>-XXXX``, and
renamed into place only if no file took the output's name meanwhile (another run), unless
``overwrite``; work folders and part files of processes that died are removed by the next run
on the same output.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eigencam_live.engine import Engine, PendingFrames, Prepared
from eigencam_live.errors import EigenCamError, SinkError, SourceError, counted
from eigencam_live.render import RenderConfig, picture_size
from eigencam_live.video import Capture, FileSource, VideoSink, open_source

from .jobs import Job
from .outputs import Tables, beside_name, find_parts, partial_name, progress_bar, publish, remove_stale_parts
from .stops import stop_signals_held

__all__ = ["AnnotateResult", "annotate_file"]

_POLL = 0.1  # seconds: every blocking call in this module wakes at least this often


@dataclass
class AnnotateResult:
    """What :func:`annotate_file` did.

    Attributes:
        frames: frames written to the output.
        seconds: wall time of the pipeline.
        interrupted: stopped by Ctrl-C or SIGTERM; :attr:`output` is then the part beside the
            output's name (``NAME.partial.mp4``), holding the ``frames`` processed so far.
        stop_requested: SIGINT or SIGTERM came while the output was being finished: it is complete,
            and the caller should stop there (not go on to the next input).
        removed: part files and work folders of dead runs on the same output, removed first.
        parts: the files named as the parts of stopped runs (``NAME.partial.mp4`` and their
            tables), beside an output that holds the whole input (said, never removed).
        warning: the input is damaged or cut off (what decoded was annotated).
        audio: the output has the input's audio; ``audio_note`` says when it was re-encoded or dropped.
        size_note: set when the output's size differs from the input's (an odd side padded).
        streams_note: set when the input has tracks the output leaves out (a second audio
            track, subtitles).
        colour_note: set when the input's colours are more than an SDR output shows (HDR, BT.2020).
        clock_note: set when the input's clock starts again (MPEG-TS recordings joined end to end).
        kept: an interrupted run's output file that existed before (``--force``): left whole.
        boxless: frames drawn with a blank map: ``look.in_boxes`` and no box at the detector's score.
    """

    input: Path
    output: Path
    frames: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    warning: str | None = None
    boxless: int = 0
    audio: bool = False
    audio_note: str | None = None
    size_note: str | None = None
    streams_note: str | None = None
    colour_note: str | None = None
    clock_note: str | None = None
    kept: Path | None = None
    stop_requested: bool = False
    removed: list[Path] = field(default_factory=list)
    parts: list[Path] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# ------------------------------------------------------------------------------------------------
# The pipeline
# ------------------------------------------------------------------------------------------------
_END = object()


#: The frames the results queue may hold (the queue before the network: half as many), in bytes.
_QUEUED_BYTES = 256 * 2**20
#: The decoded frames waiting for the network's thread, in bytes: at most 8 frames, at least 2
#: (3 at 4K, where 8 were 200 MB).
_DECODED_BYTES = 80 * 2**20


def decoded_depth(width: int, height: int) -> int:
    """How many decoded frames of ``width x height`` the capture buffer holds for annotate."""
    return min(8, max(2, _DECODED_BYTES // max(1, 3 * width * height)))


class _Pipeline:
    """The threads of one file's annotation; see the module docstring."""

    def __init__(self, engine: Engine, capture: Capture, sink: VideoSink, look: RenderConfig, batch_size: int,
                 tables: Tables, max_frames: int | None = None, origin: float = 0.0,
                 frame_size: tuple[int, int] = (0, 0)) -> None:
        self.engine, self.capture, self.sink, self.look = engine, capture, sink, look
        self.batch_size = batch_size
        self.max_frames = max_frames
        self.limited = False  # stopped at max_frames
        self.read_all = False  # the input was read to its end (not stopped before it)
        self.taken = 0  # frames read from the input
        self.tables = tables
        self.origin = origin  # the input's time that is the output's 0 (FileSource.origin)
        # batches ready for the network, and the network's results waiting for the encoder: as many
        # as fit in 128 and 256 MB of frames, at most 2 and 4 (at 4K a batch of 4 is 100 MB, and the
        # encoder, the slowest stage, keeps every queue full)
        batch_bytes = max(1, batch_size * 3 * frame_size[0] * frame_size[1])  # frame_size: (width, height)
        self.prepared: queue.Queue = queue.Queue(maxsize=min(2, max(1, _QUEUED_BYTES // 2 // batch_bytes)))
        self.results: queue.Queue = queue.Queue(maxsize=min(4, max(1, _QUEUED_BYTES // batch_bytes)))
        self.soft_stop = threading.Event()  # Ctrl-C: stop reading, write what was inferred
        self.stuck = False  # a stage did not stop, and a stop signal gave up waiting for it
        self.abort = threading.Event()  # an error: everyone stops now
        self.error: BaseException | None = None
        self.written = 0
        self.boxless = 0  # frames whose map --in-boxes blanked: no box at the score
        self.threads = [
            threading.Thread(target=self._guard, args=(self._prepare,), name="annotate-prepare", daemon=True),
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

    def _put(self, to: queue.Queue, item: object, *, soft: bool = False) -> bool:
        """Put ``item`` when there is room; ``False`` once ``abort`` is set (or, with ``soft``, a
        soft stop: the network's thread no longer takes batches then)."""
        while not self.abort.is_set() and not (soft and self.soft_stop.is_set()):
            try:
                to.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, source: queue.Queue, *, soft: bool = False) -> object | None:
        """The next item, or ``None`` once ``abort`` is set (or, with ``soft``, a soft stop)."""
        while not self.abort.is_set() and not (soft and self.soft_stop.is_set()):
            try:
                return source.get(timeout=_POLL)
            except queue.Empty:
                continue
        return None

    def _prepare(self) -> None:
        """Frames -> batches of ``batch_size`` made into the network's input; ``_END`` after the
        last, at the end of the input, at ``max_frames`` or on a soft stop."""
        # Each frame is copied into its batch as it comes and let go: the batch is the only copy of
        # its pictures (the frames' times go on beside it); a list stacked at the end held both
        # (100 MB more at 4K, in batches of 4).
        pictures: np.ndarray | None = None
        stamps: list[tuple[int, float, float | None]] = []
        try:
            while not self.abort.is_set() and not self.soft_stop.is_set():
                if self.max_frames is not None and self.taken >= self.max_frames:
                    self.limited = True
                    frame = None
                else:
                    try:
                        frame = self.capture.read(timeout=_POLL)
                    except TimeoutError:
                        continue
                    self.read_all = frame is None
                ended = frame is None
                if frame is not None:
                    self.taken += 1
                    if pictures is None:
                        pictures = np.empty((self.batch_size, *frame.image.shape), np.uint8)
                    pictures[len(stamps)] = frame.image
                    stamps.append((frame.index, frame.pts, frame.duration))
                    frame = None
                if stamps and (ended or len(stamps) >= self.batch_size):
                    ahead = self.engine.prepare(pictures[: len(stamps)])
                    batch, stamps, pictures = stamps, [], None
                    if not self._put(self.prepared, (batch, ahead), soft=True):
                        return
                if ended:
                    break
        finally:
            # not needed after a soft stop: the network's thread stops taking batches then
            self._put(self.prepared, _END, soft=True)

    def _infer(self) -> None:
        try:
            # Ctrl-C: stop taking batches, whether or not the prepare thread got its _END in
            while (item := self._get(self.prepared, soft=True)) is not None and item is not _END:
                if self.soft_stop.is_set():  # what is queued here was never inferred
                    break
                stamps: list[tuple[int, float, float | None]]
                ahead: Prepared
                stamps, ahead = item
                if not self._put(self.results, (stamps, self.engine.submit(ahead, self.look))):
                    return
        finally:
            self._put(self.results, _END)

    def _encode(self) -> None:
        while (item := self._get(self.results)) is not None and item is not _END:
            stamps: list[tuple[int, float, float | None]]
            pending: PendingFrames
            stamps, pending = item
            for (index, pts, duration), r in zip(stamps, pending.each(), strict=True):  # one frame drawn at a time
                if self.abort.is_set():  # the caller is about to close or remove the file
                    return
                pts -= self.origin
                self.sink.write(r.picture, pts, duration)
                self.tables.add(pts, r, index)
                self.written += 1
                self.boxless += r.in_boxes and r.detections is not None and not r.detections
            # the batch's pictures and maps (a frame's result is a view of them) go before the next
            # batch's are drawn: at 4K they were 230 MB more
            r = pending = item = None

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def join_until_done(self, stops: list[int] | None = None, since: int | None = None) -> bool:
        """Wait for every thread to end (each stops within one batch once ``abort`` is set), so
        the sink is closed or removed only when nobody writes to it any more. With ``stops``:
        ``False`` as soon as it holds more than ``since`` signals (default: as many as now): a
        stage stuck in a hung device or disk would hold the run, and its signals, for ever; the
        threads are daemons."""
        more = None if stops is None else len(stops) if since is None else since
        while self.alive():
            if more is not None and len(stops) > more:
                self.stuck = True
                return False
            self.join(_POLL)
        return True

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
    encoder_threads: int = 0,
    max_frames: int | None = None,
    keep: Collection[Path] = (),
) -> AnnotateResult:
    """Annotate one video file with Eigen-CAM heatmaps.

    Args:
        engine: the engine (its video state is reset first).
        job: input, output and optional stats (CSV) and heatmaps (NPZ) paths.
        look: how maps are drawn.
        batch_size: frames per forward pass.
        overwrite: replace existing outputs; otherwise an output that exists at the start, or that
            another run puts there before this one finishes, is refused (:class:`SinkError`).
        progress: show a tqdm bar (frames, fps, ETA) on stderr.
        crf, preset: x264 quality and speed.
        encoder_threads: x264's threads (0: its own choice; the command line shares the cores
            with the network, :func:`~eigencam_live.options.headless_threads`).
        max_frames: annotate only the first frames (audio is then cut to the same length).
        keep: files never named as the parts of stopped runs (the other inputs and outputs of a
            run of several; the input never is).

    Returns:
        an :class:`AnnotateResult`; ``interrupted`` when SIGINT (Ctrl-C) or SIGTERM stopped it
        (in the main thread; elsewhere a ``KeyboardInterrupt``): the output then holds the frames
        processed so far and plays. The handlers of those signals are called once it returns
        (with the default action, the process then ends, its files complete).

    Raises:
        SourceError, SinkError, ConfigError...: the unfinished output is removed. When another run
        wrote the output meanwhile, that file is left as it is, this run's file is kept beside it
        under a name the message gives, and SinkError is raised.
    """
    look = look or RenderConfig()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Got {batch_size}")
    target = job.output
    if target.is_dir():
        raise SinkError(f"output {target} is a folder")
    if target.exists() and not overwrite:
        raise SinkError(f"{target} exists (use --force to overwrite)")
    if target.exists() and os.path.samefile(target, job.input):
        raise SinkError(f"output {target} is the input: refusing to write over it")
    if not target.parent.is_dir():
        raise SinkError(f"output folder {target.parent} does not exist")
    extras = job.tables
    for extra in extras:
        if extra.exists() and not overwrite:
            raise SinkError(f"{extra} exists (use --force to overwrite)")
    removed = [p for path in (target, *extras) for p in remove_stale_parts(path)]
    source = open_source(str(job.input))  # (outside the hold: a signal stops the run as it opens)
    if not isinstance(source, FileSource):
        source.close()
        raise SourceError(f"{job.input} is not a video file")
    handed = False  # to _annotate, whose capture thread closes the source
    stops: list[int] = []
    try:
        # From here on SIGINT and SIGTERM are requests, never an exception in the middle of the run:
        # the first stops it (what is through the network is written, the part finished), another
        # stops the wait for the frames in the network; once every frame is in, the file is finished
        # anyway. The handlers are called once all is done (the work folder removed too).
        with stop_signals_held() as stops:
            try:
                work = Path(tempfile.mkdtemp(prefix=f".{target.stem}.part{os.getpid()}-", dir=target.parent))
            except OSError as exc:
                raise SinkError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
            try:
                handed = True
                result = _annotate(engine, job, source, work, look, batch_size=batch_size, overwrite=overwrite,
                                   progress=progress, crf=crf, preset=preset, encoder_threads=encoder_threads,
                                   max_frames=max_frames, removed=removed, keep=[job.input, *keep], stops=stops)
            except SinkError as exc:  # named as the user knows it, not as the hidden work file or folder
                text = str(exc).replace(str(work / job.output.name), str(target)).replace(str(work), str(target.parent))
                raise SinkError(text) from exc
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except BaseException as exc:
        if not handed:  # a signal before the hold, no work folder: closed here (else by the capture thread)
            source.close()
        if stops and isinstance(exc, EigenCamError):  # a stop asked for meanwhile is not lost with the run
            exc.stop_requested = True
        raise
    result.stop_requested = bool(stops) and not result.interrupted  # the file is whole; the caller stops
    return result


def _annotate(engine: Engine, job: Job, source: FileSource, work: Path, look: RenderConfig, *, batch_size: int,
              overwrite: bool, progress: bool, crf: int, preset: str, encoder_threads: int,
              max_frames: int | None, removed: list[Path], keep: Collection[Path], stops: list[int]) -> AnnotateResult:
    """:func:`annotate_file` once the input is open and the work folder made: the file is written
    as ``work/NAME`` and renamed to the output at the end. The stop signals that came are in
    ``stops`` (:func:`~.stops.stop_signals_held` holds them)."""
    info = source.info
    width, height = picture_size(look.view, info.width, info.height)
    try:
        sink = VideoSink(work / job.output.name, width=width, height=height, fps=info.rate,
                         time_base=info.time_base, audio_from=str(job.input) if info.has_audio else None,
                         audio_start=source.origin or None, joins=source.joins,
                         overwrite=True, crf=crf, preset=preset, threads=encoder_threads, aspect=info.aspect,
                         tags=source.tags, language=source.language, colour_tags=source.colour_tags)
    except BaseException:
        source.close()
        raise
    try:
        engine.reset()
        capture = Capture(source, queue_size=decoded_depth(info.width, info.height))
        tables = Tables(job.stats, job.heatmaps, detections=job.detections, overwrite=overwrite)
        pipe = _Pipeline(engine, capture, sink, look, batch_size, tables, max_frames, source.origin,
                         (info.width, info.height))
        left = source.left_out and f"{job.input.name}: not kept in the output: {source.left_out}"
        colour = source.colour_note and f"{job.input.name}: {source.colour_note}"
        size = sink.size_note and f"{job.input.name}: {sink.size_note}"  # (in a folder's run: which video)
        result = AnnotateResult(job.input, job.output, size_note=size, streams_note=left,
                                colour_note=colour, removed=removed)
        total = info.frame_count if max_frames is None else min(max_frames, info.frame_count or max_frames)
        bar = progress_bar(total, job.input.name, progress)
    except BaseException:  # nothing started yet: leave no temporary file and no open input
        sink.abort()
        source.close()
        raise
    start = time.perf_counter()
    try:
        pipe.start()
        try:
            while pipe.alive() and not stops:
                pipe.join(_POLL)
                bar.update(pipe.written - bar.n)
        except KeyboardInterrupt:  # (where no handler could be put: outside the main thread)
            stops.append(signal.SIGINT)
        if stops and pipe.alive():
            _wind_down(pipe, capture, stops)
            # a stop as the last frames were written finds nothing left out: the file is whole
            # (a trial: all 60 frames written, named a part, and --skip-existing did it again)
            result.interrupted = not ((pipe.read_all or pipe.limited) and pipe.written == pipe.taken and pipe.error is None)
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
        finished = sink.close(audio_to_end=not (result.interrupted or pipe.limited or result.warning))
        if result.interrupted:  # a part is never taken for the whole (by --skip-existing, by a script)
            # nor does it replace a whole file there (--force): it and its tables go beside the output
            result.kept = job.output if job.output.exists() else None
            result.output = partial_name(job.output)
            for name in ("stats_path", "heatmaps_path", "detections_path"):
                path = getattr(tables, name)
                if path is not None:
                    setattr(tables, name, partial_name(path))
        try:
            publish(finished, result.output, overwrite and not result.interrupted)
        except SinkError as exc:
            if getattr(exc, "kept", None) is None:
                raise
            # another run took the output's name meanwhile: its tables are that run's too, and
            # this run's go beside its video, named as it is (they were lost)
            beside = []
            for name in ("stats_path", "heatmaps_path", "detections_path"):
                if (path := getattr(tables, name)) is not None:
                    setattr(tables, name, beside_name(path))
                    beside.append(beside_name(path))
            tables.write()
            if beside:
                exc.args = (f"{exc.args[0]}, and its tables as {', '.join(str(p) for p in beside)}",)
            raise
    except BaseException:
        pipe.abort.set()
        capture.stop()
        if not pipe.stuck and pipe.join_until_done(stops):  # (else a stage may still write to the sink)
            sink.abort()
        raise
    finally:
        bar.close()
    result.frames, result.boxless = pipe.written, pipe.boxless
    result.audio = sink.audio_packets > 0
    result.audio_note = sink.audio_note and f"{job.input.name}: {sink.audio_note}"
    if sink.audio_damaged:  # a damaged input, as a cut-off video is
        damage = f"{counted(sink.audio_damaged, 'damaged audio packet')} of {job.input.name} left out"
        result.warning = f"{result.warning}; {damage}" if result.warning else damage
    if capture.damage:  # (the video ran to its end: its sound was kept to the end too)
        result.warning = f"{result.warning}; {capture.damage}" if result.warning else capture.damage
    if joined := source.joins is not None and source.joins.describe(source.origin):
        result.clock_note = f"{job.input.name}: {joined}"
    tables.write()
    if not (result.interrupted or pipe.limited or result.warning):  # (not the whole: --max-frames, cut off)
        written = [tables.stats_path, tables.heatmaps_path, tables.detections_path]
        result.parts = [p for path in (job.output, *written) if path is not None for p in find_parts(path, keep=keep)]
    return result


def _wind_down(pipe: _Pipeline, capture: Capture, stops: list[int]) -> None:
    """After Ctrl-C: stop decoding and write what is already through the network (at most one
    batch in it, and the frames queued for writing; for 5 s at most). Ctrl-C again (another signal
    in ``stops``, which :func:`~.stops.stop_signals_held` holds) stops waiting for them: the part
    then ends with the frames written so far, and is still finished, once each stage has stopped
    between two frames. Once more while a stage stays stuck (a hung device or disk): the part is
    given up (``KeyboardInterrupt``), and the process is free to end."""
    first = len(stops)
    pipe.soft_stop.set()
    capture.stop(timeout=0.5)
    end = time.monotonic() + 5.0
    while pipe.alive() and len(stops) == first and time.monotonic() < end:
        pipe.join(_POLL)
    if pipe.alive():
        seen = len(stops)
        pipe.abort.set()
        if not pipe.join_until_done(stops, since=seen):  # stopped again while a stage stays stuck: given up
            raise KeyboardInterrupt
