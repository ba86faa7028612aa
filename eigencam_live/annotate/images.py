"""Images in, images out: each image annotated on its own, in batches of images of one size.

One thread reads the next images while the network runs, and writer threads (one per core) encode
and write the finished ones behind it (24 photos of 1920x1280 to PNG, mobilenet_v3_large on 2
cores: 16 to 20 images/s, against 8 to 10 one after the other).

Every image keeps its own size (EXIF orientation applied: the picture as a viewer shows it); its
output is written to a temporary name and renamed into place. The images of a run share one stats
CSV and one heatmaps NPZ (:class:`~.outputs.Tables`). Images are unrelated pictures, not video
frames: no sign continuity and no temporal smoothing carry from one to the next.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from eigencam_live.cam import SubspaceTracker
from eigencam_live.engine import Engine, FrameResult
from eigencam_live.errors import ConfigError, SinkError, SourceError
from eigencam_live.options import cpu_cores
from eigencam_live.render import RenderConfig, draw_boxes, render
from eigencam_live.video.images import heif_opener, image_metadata, read_image

from .jobs import Job
from .outputs import Tables, part_name, progress_bar, replace_atomically

__all__ = ["ImagesResult", "annotate_images"]

#: Images held back while waiting for others of their size, at most this many batches' worth.
_HELD_BATCHES = 4


@dataclass
class ImagesResult:
    """What :func:`annotate_images` did.

    Attributes:
        written: the images annotated (outputs in place).
        failed: ``(input, reason)`` for each image that could not be read or written.
        notes: ``(input, what its output leaves out)``: frames or pages beyond the first, bits.
        interrupted: stopped by Ctrl-C; every image in ``written`` is complete.
        boxless: the images drawn with a blank map: ``look.in_boxes`` and no box at the detector's score.
    """

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[tuple[Path, str]] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    boxless: list[Path] = field(default_factory=list)


class _NoMemory(SubspaceTracker):
    """A tracker that carries nothing from one image to the next: the per-image sign rule holds."""

    def start(self, positions: int) -> None:
        return None

    def follow(self, u, real, signs, firm=None):
        return signs


@contextlib.contextmanager
def _stills(engine: Engine) -> Iterator[None]:
    """The engine set up for unrelated pictures while inside; its video state restored after."""
    tracker, smoothing = engine.tracker, engine.config.smoothing
    engine.tracker = _NoMemory()
    if smoothing:
        engine.reconfigure(smoothing=0.0)
    try:
        yield
    finally:
        engine.tracker = tracker
        if smoothing:
            engine.reconfigure(smoothing=smoothing)


def annotate_images(
    engine: Engine,
    jobs: list[Job],
    look: RenderConfig | None = None,
    *,
    batch_size: int = 4,
    stats: Path | None = None,
    heatmaps: Path | None = None,
    detections: Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    writers: int = 0,
) -> ImagesResult:
    """Annotate images, each written as its job's output, in its own size.

    Args:
        engine: the engine (its video state is left as it was).
        jobs: image inputs and their outputs (the output's extension picks the format).
        batch_size: images of one size per forward pass.
        stats, heatmaps, detections: one CSV (``file``, label, probability, explained, peak; a
            detector's box count), one NPZ (``maps/NAME`` and ``files``) and one JSON lines file (a
            detector's boxes) for all the images, in input order.
        overwrite: replace files at the outputs; ``False`` (as :func:`annotate_file`'s): an output
            that exists when its image is written is left as it is, and the image is listed in ``failed``.
        writers: threads that encode and write the outputs (0: one per core). Encoding a PNG takes
            longer than the network (70 ms at 1920x1280 against 18): on 2 cores, 2 writers gave
            15.8 to 19.8 images/s, 1 writer 11.6 to 13.4.

    Returns:
        an :class:`ImagesResult`; an image that cannot be read or written is listed in ``failed``
        and the others go on. Ctrl-C stops after the batch in hand (``interrupted``).
    """
    look = look or RenderConfig()
    result = ImagesResult()
    done: dict[int, tuple[Job, FrameResult]] = {}
    failed: dict[int, str] = {}
    held: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
    alphas: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # the transparency and own colours of those with one, until written
    metadata: dict[int, dict] = {}  # the colour profile and EXIF of those that have them, until written
    bar = progress_bar(len(jobs), "images", progress, unit="image")
    start = time.perf_counter()
    # Reading and writing overlap the network: one thread reads ahead, one writes behind (each
    # bounded, so that large pictures never pile up); the network runs in the caller's thread.
    ahead = max(2, 2 * batch_size)
    reader = ThreadPoolExecutor(1, thread_name_prefix="annotate-read")
    writer = ThreadPoolExecutor(writers or cpu_cores(), thread_name_prefix="annotate-write")
    reads: deque[Future] = deque()
    writes: deque[tuple[int, FrameResult, Future]] = deque()

    def written(count: int) -> None:
        """Wait for the oldest writes until at most ``count`` are pending, and record them. A
        Ctrl-C while waiting leaves the write it waited for pending (the ``finally`` records it)."""
        while len(writes) > count:
            writes[0][2].exception()  # waits; nothing taken off the queue yet
            i, r, future = writes.popleft()
            if (exc := future.exception()) is not None:  # SinkError, or an encoder that refuses: this image only
                failed[i] = str(exc)
            else:
                if (note := future.result()) is not None:  # metadata the output's format could not hold
                    result.notes.append((jobs[i].input, note))
                if r.in_boxes and r.detections is not None and not r.detections:
                    result.boxless.append(jobs[i].input)
                r.picture = None  # the tables keep numbers and the small map, not the pictures
                r.__dict__.pop("heatmap", None)
                done[i] = (jobs[i], r)
            bar.update(1)

    def run(shape: tuple[int, ...]) -> None:
        group = held.pop(shape)
        try:
            results = engine.process([image for _, image in group], look)
        except ConfigError as exc:  # this size's map cannot give what was asked (a component beyond its rank)
            for i, _ in group:
                failed[i] = f"{jobs[i].input}: {exc}"
                bar.update(1)
            return
        for (i, _), r in zip(group, results, strict=True):
            written(ahead)
            alpha, own = alphas.pop(i, (None, None))
            picture = r.picture
            if alpha is not None and jobs[i].output.suffix.lower() in _ALPHA_FORMATS:
                picture = _drawn_on(own, r, look)
            writes.append((i, r, writer.submit(_write_image, jobs[i].output, picture, overwrite, alpha,
                                               metadata.pop(i, None))))

    # outputs there before the run: not replaced, and not annotated for nothing (a review: each was
    # run, then said to have "appeared while this run was writing it")
    present = set() if overwrite else {i for i, job in enumerate(jobs) if job.output.exists()}
    raised: BaseException | None = None
    try:
        with _stills(engine):
            upcoming = iter(jobs)
            reads.extend(reader.submit(_read, job.input) for job in itertools.islice(upcoming, ahead))
            for i, job in enumerate(jobs):
                future = reads.popleft()
                if (nxt := next(upcoming, None)) is not None:
                    reads.append(reader.submit(_read, nxt.input))
                if i in present:
                    failed[i] = f"{job.output} exists: left as it is (overwrite=True replaces it)"
                    bar.update(1)
                    continue
                try:
                    image, alpha, own, meta, note = future.result()
                except SourceError as exc:
                    failed[i] = str(exc)
                    bar.update(1)
                    continue
                if alpha is not None:
                    alphas[i] = (alpha, own)
                if meta is not None:
                    metadata[i] = meta
                if note is not None:
                    result.notes.append((job.input, note))
                held.setdefault(image.shape, []).append((i, image))
                if len(held[image.shape]) >= batch_size:
                    run(image.shape)
                elif sum(len(g) for g in held.values()) >= _HELD_BATCHES * batch_size:
                    run(max(held, key=lambda s: len(held[s])))  # many sizes: do not hoard them
            while held:
                run(next(iter(held)))
    except KeyboardInterrupt:
        result.interrupted = True
    except BaseException as exc:
        raised = exc
        raise
    finally:
        # Every image handed to the writer is finished (or its failure recorded), and both threads
        # end: a second Ctrl-C meanwhile only repeats this (a few writes at most).
        while True:
            try:
                reader.shutdown(wait=True, cancel_futures=True)  # the read in hand ends; no other starts
                written(0)
                writer.shutdown(wait=True)
                break
            except KeyboardInterrupt:
                result.interrupted = True
        bar.close()
        # the tables of the images written, whatever ended the run (an error raised goes on after)
        result.seconds = time.perf_counter() - start
        result.written = [job.output for _, (job, _) in sorted(done.items())]  # in input order
        result.failed = [(jobs[i].input, reason) for i, reason in sorted(failed.items())]
        tables = Tables(stats, heatmaps, detections=detections, images=True, overwrite=overwrite)
        # each row and map named by its output, from the outputs' common folder: the bare name for a
        # folder of outputs, sub/NAME where outputs beside their inputs share a name
        try:
            base = os.path.commonpath([os.path.abspath(j.output.parent) for j in jobs]) if jobs else ""
        except ValueError:  # Windows: outputs on several drives
            base = None
        for i in sorted(done):
            job, r = done[i]
            key = Path(os.path.relpath(os.path.abspath(job.output), base)).as_posix() if base else str(job.output)
            tables.add(key, r, source=str(job.input))
        try:
            if done:  # none annotated (every image failed): no empty tables beside the errors
                tables.write()
        except Exception:
            if raised is None:  # else the error that ended the run is the one to tell
                raise
    return result


#: Output formats that keep an input's transparency.
_ALPHA_FORMATS = (".png", ".webp", ".tif", ".tiff", ".avif", ".heic", ".heif")
#: Output formats that keep an input's colour profile and EXIF, by Pillow's name.
_METADATA_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                     ".bmp": "BMP", ".avif": "AVIF", ".heic": "HEIF", ".heif": "HEIF"}  # (PNG: chunks; BMP: its dpi alone)
#: What of the metadata a format written through Pillow cannot hold (Pillow drops it without a word).
_CANNOT_HOLD = {".bmp": ("icc_profile", "exif")}
#: Formats OpenCV does not write: Pillow does, metadata or not (HEIC through pillow-heif).
_PILLOW_ONLY = (".heic", ".heif")


def _read(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, dict | None, str | None]:
    return (*read_image(path), *image_metadata(path))


def _drawn_on(own: np.ndarray, r: FrameResult, look: RenderConfig) -> np.ndarray:
    """The picture drawn again on a transparent image's own colours, for an output that keeps its
    alpha: drawn on the colours laid over white (what the network saw) and then given the alpha,
    its half-transparent pixels were laid over white twice (washed out)."""
    picture = render(own, r.heatmap, look.view, look.alpha, look.colormap, in_range=True)  # the engine's map
    if r.detections is not None and look.boxes:
        draw_boxes(picture, r.detections, own.shape[1], own.shape[0])
    return picture


def _png_chunks(png: bytes, metadata: dict) -> bytes:
    """OpenCV's ``png`` with the colour profile (iCCP), EXIF (eXIf) and dpi (pHYs) chunks put after
    its header: Pillow's own PNG encoder takes twice as long."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    extra = b""
    if metadata.get("icc_profile"):
        extra += chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(metadata["icc_profile"]))
    if metadata.get("exif"):
        exif = metadata["exif"]
        extra += chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    if metadata.get("dpi"):
        x, y = (round(d / 0.0254) for d in metadata["dpi"])
        extra += chunk(b"pHYs", struct.pack(">IIB", x, y, 1))
    end = 8 + 12 + struct.unpack(">I", png[8:12])[0]  # the signature, then IHDR
    return png[:end] + extra + png[end:]


def _with_metadata(suffix: str, picture: np.ndarray, metadata: dict) -> bytes:
    """``picture`` (BGR or BGRA) encoded by Pillow with the input's colour profile, EXIF and dpi:
    as OpenCV encodes the others (JPEG quality 95, WebP lossless, TIFF LZW)."""
    import io

    from PIL import Image

    fmt = _METADATA_FORMATS[suffix]
    order = [2, 1, 0, 3][: picture.shape[2]]
    image = Image.fromarray(np.ascontiguousarray(picture[:, :, order]), "RGBA" if picture.shape[2] == 4 else "RGB")
    as_opencv = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}, "TIFF": {"compression": "tiff_lzw"},
                 "AVIF": {"quality": 95}, "HEIF": {"quality": 95}}.get(fmt, {})
    if fmt == "TIFF" and _exif_subdirectories(metadata.get("exif")):
        # libtiff (LZW) cannot write EXIF's own directories (the camera's settings, GPS): it fails
        # the whole file. Pillow's own TIFF writer can, uncompressed (lossless either way).
        as_opencv = {"compression": "raw"}
    if fmt == "HEIF":
        heif_opener()
    options = dict(metadata, **as_opencv)
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _named(metadata: dict) -> str | None:
    """``its colour profile, EXIF and dpi``: what of them ``metadata`` holds, in words."""
    names = [n for key, n in (("icc_profile", "colour profile"), ("exif", "EXIF"), ("dpi", "dpi")) if metadata.get(key)]
    if not names:
        return None
    return "its " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1])


def _exif_subdirectories(exif: bytes | None) -> bool:
    """Whether ``exif`` points to directories of its own (Exif, GPS, Interoperability)."""
    if not exif:
        return False
    from PIL import Image

    directory = Image.Exif()
    directory.load(exif)
    return any(tag in directory for tag in (0x8769, 0x8825, 0xA005))


def _write_image(path: Path, picture: np.ndarray, overwrite: bool, alpha: np.ndarray | None = None,
                 metadata: dict | None = None) -> str | None:
    """Write ``picture`` (with the input's ``alpha`` and ``metadata`` where the format keeps them).
    Returns what of the metadata its format could not hold, if anything (said as a note)."""
    if alpha is not None and path.suffix.lower() in _ALPHA_FORMATS:
        # the input's transparency on every frame-sized panel (side by side, stacked: twice)
        rows, cols = picture.shape[0] // alpha.shape[0], picture.shape[1] // alpha.shape[1]
        if (rows * alpha.shape[0], cols * alpha.shape[1]) == picture.shape[:2]:
            picture = np.dstack([picture, np.tile(alpha, (rows, cols))])
    # Encoded in memory (the format by the extension), written by Python: a full disk is said as
    # such, where cv2.imwrite only returned False (and libpng printed "Write Error" lines).
    suffix = path.suffix.lower()
    data, left_out = None, None
    if (metadata or suffix in _PILLOW_ONLY) and suffix in _METADATA_FORMATS and suffix != ".png":
        # What Pillow will not write (EXIF over 64 KB in a JPEG) is left out, and said: the EXIF
        # alone first, then all of it (OpenCV writes the picture; a trial: the colour profile went
        # with an EXIF too large, without a word)
        metadata = metadata or {}
        cannot = {k: metadata[k] for k in _CANNOT_HOLD.get(suffix, ()) if metadata.get(k)}
        lost = _named(cannot)  # (a trial: a photo written as BMP lost its EXIF, and nothing said so)
        metadata = {k: v for k, v in metadata.items() if k not in cannot}
        without_exif = {k: v for k, v in metadata.items() if k != "exif"}
        tries = [(metadata, None)]
        if metadata.get("exif") and any(without_exif.values()):
            tries.append((without_exif, "its EXIF"))
        held = _named(metadata)
        if suffix in _PILLOW_ONLY and held:
            tries.append(({}, held))
        why = None
        for kept, dropped in tries:
            try:
                data = _with_metadata(suffix, picture, kept)
            except (ValueError, OSError, RuntimeError) as exc:  # (RuntimeError: libtiff's)
                why = exc
                continue
            left_out = dropped
            break
        if data is None and suffix in _PILLOW_ONLY:
            raise SinkError(f"cannot encode {path} as {path.suffix}: {why}")
        if data is None and held:
            left_out = held
        if left_out is not None:
            left_out = f"{left_out} left out: {_METADATA_FORMATS[suffix]} would not take it ({why})"
        elif lost is not None:
            left_out = f"{lost} left out: {_METADATA_FORMATS[suffix]} cannot hold {'them' if ' and ' in lost else 'it'}"
    if data is None:
        ok, data = cv2.imencode(path.suffix, picture)
        if not ok:
            raise SinkError(f"cannot encode {path} as {path.suffix}")
        if metadata and suffix == ".png":
            data = _png_chunks(data.tobytes(), metadata)
    replace_atomically(path, part_name(path), lambda t: t.write_bytes(memoryview(data)), overwrite=overwrite)
    return left_out
