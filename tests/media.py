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
    s = min(max(4, min(width, height) // 4), width, height)
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
    rotation: int = 0,
    start: float = 0.0,
    audio_start: float | None = None,
    time_base: Fraction = TIME_BASE,
    pix_fmt: str = "yuv420p",
    aspect: Fraction | None = None,
    audio_first: bool = False,
    gop: int | None = None,
    cover: bool = False,
    video: bool = True,
    bframes: int = 0,
) -> Path:
    """An H.264 clip of ``frames`` frames of :func:`pattern` (the container from the suffix: .mp4,
    .mov, .mkv, .webm (VP9), .avi, .ts).

    Args:
        size: ``(width, height)`` as coded.
        rate: nominal frame rate (exact).
        audio: add an audio track (48 kHz mono sine) as long as the video.
        audio_codec: its encoder (``aac``; ``pcm_s16le`` in a ``.mov`` for a codec MP4 cannot hold;
            ``libmp3lame``, ``ac3``, ``eac3``, ``libopus``, ``flac``, ``alac``, ``vorbis``...).
        pts: per-frame timestamps in seconds (variable frame rate); ``None`` = ``i / rate``.
        faststart: index at the front (needed for a truncated file to still open).
        rotation: the display matrix's rotation (degrees counter-clockwise), as a phone sets it.
        start: seconds added to every video timestamp (an MPEG-TS clock does not start at 0).
        audio_start: where the audio starts, in seconds (default: with the video).
        time_base: the video stream's clock (the muxer may impose its own: Matroska's is 1/1000 s).
        pix_fmt: ``yuv444p`` allows odd sizes (yuv420p has none).
        aspect: the sample aspect ratio (a pixel's width / height: anamorphic video), if not square.
        gop: frames from one keyframe to the next (x264's default: 250).
        audio_first: mux all the audio before the video (by default it follows it: in an MPEG-TS
            either is a poor muxer's interleaving).
        cover: a cover art track first (one JPEG, an attached picture: a song's, a podcast's).
        video: ``False``: no video track (the sound alone, with ``cover``: a song).
        bframes: B-frames between references (H.264: frames decoded out of their order).
    """
    width, height = size
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=_format_of(path), options=options) as out:
        if cover:
            art = out.add_stream("mjpeg", rate=1)
            art.width, art.height, art.pix_fmt = 48, 48, "yuvj420p"
            art.disposition = av.stream.Disposition.attached_pic
            picture = av.VideoFrame.from_ndarray(np.full((48, 48, 3), 200, np.uint8), format="bgr24")
            art_packets = [*art.encode(picture.reformat(format="yuvj420p")), *art.encode(None)]  # muxed once
        webm = Path(path).suffix.lower() == ".webm"
        if video:
            v = out.add_stream("libvpx-vp9" if webm else "libx264", rate=rate)
            v.width, v.height, v.pix_fmt = width, height, pix_fmt
            v.time_base = time_base
            v.codec_context.time_base = time_base
            v.options = {"deadline": "realtime", "cpu-used": "8"} if webm else {"preset": "ultrafast", "crf": "30"}
            if gop is not None:
                v.codec_context.gop_size = gop
            if bframes:
                v.options = {**v.options, "x264-params": f"bframes={bframes}:b-adapt=0"}
            if rotation:
                v.set_display_rotation(rotation)
            if aspect is not None:
                v.codec_context.sample_aspect_ratio = aspect
        a = None
        if audio:
            a = out.add_stream(audio_codec, rate=48000)
            a.layout = "mono"
            if audio_codec == "vorbis":  # FFmpeg's own Vorbis encoder: experimental, stereo only
                a.layout = "stereo"
                a.codec_context.options = {"strict": "experimental"}
        for packet in art_packets if cover else []:  # (every stream added: the header is written now)
            out.mux(packet)
        times = pts if pts is not None else [i / float(rate) for i in range(frames)]
        first = start if audio_start is None else audio_start
        if a is not None and audio_first:
            _write_tone(out, a, start + times[-1] + 1 / float(rate) - first, first)
        for i, t in enumerate(times if video else []):
            frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format="bgr24")
            frame.pts = int(round((start + t) / time_base))
            frame.time_base = time_base
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode(None) if video else []:
            out.mux(packet)
        if a is not None and not audio_first:
            _write_tone(out, a, start + times[-1] + 1 / float(rate) - first, first)
    return path


def _format_of(path: Path) -> str:
    return {".mkv": "matroska", ".webm": "webm", ".ts": "mpegts", ".mov": "mov", ".avi": "avi"}.get(
        Path(path).suffix.lower(), "mp4")


def _write_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float,
                start: float = 0.0) -> None:
    """A 440 Hz tone of ``seconds`` from ``start`` (its first sample is loud: the onset is sharp)."""
    sr, chunk = 48000, 1024
    total = int(seconds * sr)
    first = int(round(start * sr))
    for begin in range(0, total, chunk):
        n = min(chunk, total - begin)
        t = (np.arange(begin, begin + n) / sr).astype(np.float32)
        channels = stream.codec_context.layout.nb_channels
        samples = np.repeat((0.2 * np.cos(2 * np.pi * 440 * t)).astype(np.float32)[None, :], channels, axis=0)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=stream.codec_context.layout.name)
        frame.sample_rate = sr
        frame.pts = first + begin
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
    """What a player sees: video codec, pix_fmt, size, rate, frame count (decoded), pts (seconds;
    ``times``: exact), audio (codec, sample rate, packets, bytes, ``start``: seconds of the first
    decoded sample, ``onset``: seconds of the first audible one)."""
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
        times = [frame.pts * frame.time_base for frame in c.decode(v)]
        info["frames"] = len(times)
        info["pts"] = [float(t) for t in times]
        info["times"] = times  # exact Fractions
        info["time_base"] = v.time_base
        info["duration"] = v.duration * v.time_base if v.duration is not None else None  # exact, the track's
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            packets = [p for p in c.demux(a) if p.size]
            info["audio"] = {
                "codec": a.codec_context.codec.canonical_name,
                "sample_rate": a.codec_context.sample_rate,
                "packets": len(packets),
                "bytes": sum(p.size for p in packets),
            }
    if info["audio"] is not None:
        info["audio"].update(_audio_times(path))
    return info


def _audio_times(path: Path) -> dict:
    with av.open(str(path)) as c:
        start = onset = None
        for frame in c.decode(audio=0):
            if start is None:
                start = frame.time
            loud = np.nonzero(np.abs(frame.to_ndarray().astype(np.float64)).max(axis=0) > _LOUD[frame.format.name[:3]])[0]
            if len(loud):
                onset = frame.time + loud[0] / frame.sample_rate
                break
    return {"start": start, "onset": onset}


_LOUD = {"flt": 0.05, "dbl": 0.05, "s16": 0.05 * 2**15, "s32": 0.05 * 2**31, "u8": 0.05 * 2**7}


def annotate_signalled_at_frame(frame: int, signal_name: str, *, again_when_stopping: bool = False) -> str:
    """Python source for ``python -c``: ``annotate`` (its arguments from the command line) that
    sends itself ``signal.<signal_name>`` right after its sink wrote frame ``frame``: the input
    cannot be finished before the signal is handled, and no test sleeps to win a race.
    ``again_when_stopping``: and once more as the run starts stopping (its first ``Capture.stop``),
    as a user who presses Ctrl-C twice does."""
    return f"""
import os, signal, sys
from eigencam_live.video import Capture, VideoSink
write, stop = VideoSink.write, Capture.stop
def write_then_signal(self, image, pts=None, duration=None):
    write(self, image, pts, duration)
    if self.frames_written == {int(frame)}:
        os.kill(os.getpid(), signal.{signal_name})
def stop_and_signal(self, timeout=1.0):
    if {bool(again_when_stopping)} and not getattr(Capture, "signalled", False):
        Capture.signalled = True
        os.kill(os.getpid(), signal.{signal_name})
    stop(self, timeout)
VideoSink.write, Capture.stop = write_then_signal, stop_and_signal
from eigencam_live.cli import annotate_main
sys.exit(annotate_main(sys.argv[1:]))
"""
