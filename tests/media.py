"""Synthetic media for the video tests: tiny clips written with PyAV, with or without audio.

Every helper writes into a folder the test owns (``tmp_path``) and returns the path; clips are
small (96x64, a few dozen frames) so that the whole video suite stays fast on a 2-core CPU.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

NTSC = Fraction(30000, 1001)
TIME_BASE = Fraction(1, 90000)


def pattern(index: int, width: int = 96, height: int = 64) -> np.ndarray:
    """Frame ``index`` of a moving test pattern: ``(height, width, 3)`` uint8 BGR."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (xx * 2 + index * 5) % 256
    img[..., 1] = (yy * 3) % 256
    img[..., 2] = 80
    s = max(4, min(width, height) // 4)
    x = (index * 3) % max(1, width - s)
    y = (index * 2) % max(1, height - s)
    checker = ((np.arange(s)[:, None] // 3 + np.arange(s)[None, :] // 3) % 2) * 255
    img[y : y + s, x : x + s] = checker[..., None].astype(np.uint8)
    return img


def write_clip(
    path: Path,
    *,
    frames: int = 20,
    size: tuple[int, int] = (96, 64),
    rate: Fraction = NTSC,
    audio: bool = False,
    pts: list[float] | None = None,
    faststart: bool = False,
    audio_codec: str = "aac",
) -> Path:
    """An H.264 clip of ``frames`` frames of :func:`pattern`.

    Args:
        size: ``(width, height)``.
        rate: nominal frame rate (exact).
        audio: add an audio track (48 kHz mono sine) as long as the video.
        audio_codec: its codec (``aac``; ``pcm_s16le`` in a ``.mov`` for a codec MP4 cannot hold).
        pts: per-frame timestamps in seconds (variable frame rate); ``None`` = ``i / rate``.
        faststart: index at the front (needed for a truncated file to still open).
    """
    width, height = size
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=_format_of(path), options=options) as out:
        v = out.add_stream("libx264", rate=rate)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.time_base = TIME_BASE
        v.codec_context.time_base = TIME_BASE
        v.options = {"preset": "ultrafast", "crf": "30"}
        a = None
        if audio:
            a = out.add_stream(audio_codec, rate=48000)
            a.layout = "mono"
        times = pts if pts is not None else [i / float(rate) for i in range(frames)]
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format="bgr24")
            frame.pts = int(round(t / TIME_BASE))
            frame.time_base = TIME_BASE
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode(None):
            out.mux(packet)
        if a is not None:
            duration = times[-1] + 1 / float(rate)
            _write_tone(out, a, duration)
    return path


def _format_of(path: Path) -> str:
    return {".mkv": "matroska", ".ts": "mpegts", ".mov": "mov"}.get(Path(path).suffix.lower(), "mp4")


def _write_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    sr, chunk = 48000, 1024
    total = int(seconds * sr)
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        t = (np.arange(start, start + n) / sr).astype(np.float32)
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = sr
        frame.pts = start
        frame.time_base = Fraction(1, sr)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def write_truncated(path: Path, *, frames: int = 40, keep: float = 0.5, size: tuple[int, int] = (96, 64)) -> Path:
    """A clip cut off after ``keep`` of its bytes (index first, so it still opens)."""
    write_clip(path, frames=frames, size=size, faststart=True)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_text_as_video(path: Path) -> Path:
    path.write_text("this is not a video\n" * 20)
    return path


def write_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def probe(path: Path) -> dict:
    """What a player sees: video codec, pix_fmt, size, rate, frame count (decoded), pts, audio."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {
            "codec": v.codec_context.name,
            "pix_fmt": v.codec_context.pix_fmt,
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "rate": v.average_rate,
            "audio": None,
        }
        pts = []
        for frame in c.decode(v):
            pts.append(float(frame.pts * frame.time_base))
        info["frames"] = len(pts)
        info["pts"] = pts
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            packets = [p for p in c.demux(a) if p.size]
            info["audio"] = {
                "codec": a.codec_context.name,
                "sample_rate": a.codec_context.sample_rate,
                "packets": len(packets),
                "bytes": sum(p.size for p in packets),
            }
    return info
