"""``python main.py annotate INPUT... [-o OUTPUT]``: annotate video files and images headlessly.

Exit codes: 0 done; 1 error (one line on stderr, no traceback); 2 bad command line (argparse);
3 done, but an input was damaged or cut off (what decoded was annotated and kept); 130 Ctrl-C
(SIGINT) and 143 SIGTERM (either way the output holds the frames processed so far and plays).

Never imports Qt: it runs on servers without a display.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

from .errors import EigenCamError, counted

__all__ = ["annotate_main", "build_parser", "pipes_may_close"]

PROG = "eigencam-live"
EXIT_ERROR, EXIT_USAGE, EXIT_DAMAGED, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 3, 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it stops a run exactly as Ctrl-C does: the
    frames already through the network are written and the output is finished, playable."""


_terminated = threading.Event()  # SIGTERM arrived during this annotate_main
_stop_said: list[tuple[str, int]] = []  # the stop this annotate_main said: a later signal is the same stop
_finished: list = []  # the outputs (paths) this annotate_main finished, whole: a stop after them says so


def _on_sigterm(signum: int, frame: object) -> None:
    _terminated.set()
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the main thread while the command runs (another
    thread, as in a test, keeps whatever handler it had)."""
    _terminated.clear()
    _stop_said.clear()
    _finished.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped() -> tuple[str, int]:
    """How the run was stopped: the word for the message and the exit code (the first said, for
    every signal after it: SIGTERM then Ctrl-C is said and ends as terminated)."""
    if not _stop_said:
        _stop_said.append(("terminated", EXIT_TERMINATED) if _terminated.is_set() else ("interrupted", EXIT_INTERRUPTED))
    return _stop_said[0]


def _say_stopped() -> int:
    """Say a stop that came outside a video's run (before it, between two, or as the last was
    reported), with what was finished before it; returns the exit code."""
    word, code = _stopped()
    if not _finished:
        _say(word, "stopped; no output was finished")
    elif len(_finished) == 1:
        _say(word, f"stopped after finishing {_finished[0]} (complete)")
    else:
        _say(word, f"stopped after finishing {len(_finished)} outputs, each complete (the last: {_finished[-1]})")
    return code


def build_parser() -> argparse.ArgumentParser:
    from .annotate.jobs import IMAGE_FORMATS
    from .options import OneLineParser, add_engine_options, add_render_options

    p = OneLineParser(
        prog=f"{PROG} annotate",
        description="Annotate video files and images with Eigen-CAM heatmaps: videos become H.264 MP4 at the "
                    "input's frame rate, timestamps and size, with its audio; images become images of their own size.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 damaged input (partial output kept), 130 interrupted "
               "(Ctrl-C) and 143 terminated (SIGTERM): partial output kept, playable.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="videos, images, folders of them, or globs")
    p.add_argument("-o", "--output", metavar="OUTPUT",
                   help="output file (one input) or folder; default: NAME.eigencam.mp4 (videos) or "
                        "NAME.eigencam.png (images) beside each input")
    exists = p.add_mutually_exclusive_group()
    exists.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs (never an input)")
    exists.add_argument("--skip-existing", action="store_true",
                        help="annotate only the inputs whose output is not there yet (files added to a folder; what "
                             "a stopped run had not finished: a video stopped part-way left NAME.partial.mp4)")
    add_engine_options(p)
    add_render_options(p)
    g = p.add_argument_group("run")
    g.add_argument("--batch-size", "-b", type=int, default=4, metavar="N",
                   help="frames per forward pass (default: %(default)s)")
    g.add_argument("--stats", metavar="FILE.csv",
                   help="per-frame CSV: index, pts, top-1 label and probability, explained variance, peak x/y, "
                        "and a detector's number of boxes (images: one CSV for all, by file)")
    g.add_argument("--detections", metavar="FILE.jsonl",
                   help="detectors: one JSON object per frame, {index, pts, boxes: [{box: [x0, y0, x1, y1], label, "
                        "score}]} in frame pixels (images: {file, boxes}, one file for all)")
    g.add_argument("--heatmaps", metavar="FILE.npz",
                   help="low-resolution maps (float16, N x h x w) and their timestamps (pts, seconds); images: "
                        "one array per file (maps/NAME)")
    g.add_argument("--image-format", default="png", choices=IMAGE_FORMATS,
                   help="format of annotated images; 'same' keeps each input's (default: %(default)s)")
    g.add_argument("--crf", type=int, default=20, metavar="Q",
                   help="x264 quality, 0 (lossless) to 51; lower is better (default: %(default)s)")
    g.add_argument("--preset", default="veryfast",
                   choices=["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"],
                   help="x264 speed/size trade-off (default: %(default)s)")
    g.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="annotate only the first N frames of each input (audio cut to match)")
    g.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads for the network; 0 = half the CPU cores, the other half encoding "
                        "(default: %(default)s)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _say(kind: str, message: str) -> None:
    print(f"{PROG}: {kind}: {message}", file=sys.stderr, flush=True)


def annotate_main(argv: list[str]) -> int:
    """Run the annotate command; returns the process exit code."""
    parser = build_parser()
    try:
        # `--` ends the options: what follows is inputs, even named -x.mp4 (intermixed parsing
        # took it for an unknown option)
        cut = argv.index("--") if "--" in argv else len(argv)
        args = parser.parse_intermixed_args(argv[:cut])  # `annotate a.mp4 --model m b.mp4`: both inputs
        args.inputs = [*args.inputs, *argv[cut + 1 :]]
        from .options import typed_options

        args.typed = typed_options(parser, argv[:cut], intermixed=True)
        if not args.inputs and not args.list_layers:
            parser.error("give at least one INPUT: a video, an image, a folder of them, or a glob")
    except SystemExit as exc:  # --help (0) or a usage error (2, message already printed)
        return int(exc.code or 0)
    try:
        with _sigterm_as_interrupt(), pipes_may_close():
            return _run_and_report(args)
    except KeyboardInterrupt:
        if _stop_said:  # a signal after the stop was said (the process was ending): the same stop
            return _stop_said[0][1]
        return _say_stopped()  # as the run ended (a trial: exit 130, nothing said, all written)


class _PipeSafe:
    """A text stream whose reader may go away (``annotate ... | head``): the first write that finds
    the pipe closed sends the stream's descriptor to the null device, and the run goes on. A lost
    line of log is no reason to lose the work (the write raised, a traceback, the other inputs
    left undone, the tables unwritten)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_null()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_null()

    def _to_null(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # no descriptor to speak of
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self._stream.fileno())
            finally:
                os.close(null)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def pipes_may_close() -> Iterator[None]:
    """stdout and stderr as :class:`_PipeSafe` streams while inside."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (_PipeSafe(s) if s is not None else s for s in saved)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):  # what is buffered goes out guarded, not at exit
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = saved


def _run_and_report(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (Terminated), outside a video's run
        if _stop_said:  # or after the stop was said, with what was finished: said once
            return _stop_said[0][1]
        return _say_stopped()
    except EigenCamError as exc:
        _say("error", str(exc))
        return EXIT_ERROR
    except (MemoryError, RuntimeError) as exc:
        # PyTorch reports a failed allocation as a RuntimeError (torch.OutOfMemoryError on CUDA).
        if not isinstance(exc, MemoryError) and "out of memory" not in str(exc).lower() \
                and "not enough memory" not in str(exc).lower():
            raise
        _say("error", "out of memory; try a smaller --short-side or --batch-size")
        return EXIT_ERROR


def _first_frame_size(inputs: list[str]) -> tuple[int, int] | None:
    """``(H, W)`` of the first input's frames, for shapes at the input size in use (``None``: no
    input given, or it cannot be read here; the shapes are then for a square frame)."""
    if not inputs:
        return None
    from .annotate import expand_inputs
    from .errors import EigenCamError
    from .video import open_source

    try:
        with open_source(str(expand_inputs(inputs[:1])[0])) as source:
            return source.info.height, source.info.width
    except (EigenCamError, OSError, IndexError):
        return None


def _fixed_size_note(engine, first: os.PathLike, typed: set[str]) -> str | None:
    """What a network that takes one input size does to the frames, where the user would not
    expect it: a typed ``--short-side`` it cannot use, frames of another aspect stretched to its size
    (judged on the first input)."""
    from .config import stretch_note

    fixed = engine.loaded.spec.fixed_input
    if not fixed:
        return None
    hw = _first_frame_size([str(first)])
    # (a note of the network's own, "runs at 224x224 only: frames are resized to it", says it already)
    stretched = stretch_note(engine.loaded.spec.name, fixed, *hw) if hw is not None and not engine.loaded.note else None
    if "short_side" in typed:
        return (f"--short-side {engine.config.short_side} is not used: {os.path.basename(engine.loaded.spec.name)} "
                f"takes {fixed[1]}x{fixed[0]} input only, and each frame is resized to it"
                + (f" ({hw[1]}x{hw[0]} frames stretched: their aspect is not kept)" if stretched else ""))
    return stretched


def _run(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .options import engine_config_from_args, headless_threads, quiet_native_logs, render_config_from_args

    quiet_native_logs()
    config = engine_config_from_args(args, args.typed)
    look = render_config_from_args(args)
    if not 1 <= args.batch_size <= 256:
        raise ConfigError(f"--batch-size must be an integer in [1, 256]. Got {args.batch_size}")
    if not 0 <= args.crf <= 51:
        raise ConfigError(f"--crf must be an integer in [0, 51]. Got {args.crf}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be a positive integer. Got {args.max_frames}")
    if not 0 <= args.threads <= 1024:
        raise ConfigError(f"--threads must be an integer in [0, 1024]. Got {args.threads}")
    for flag, path in (("--output", args.output), ("--stats", args.stats), ("--heatmaps", args.heatmaps),
                       ("--detections", args.detections)):
        if path is not None and not path.strip():  # a trial: -o "" wrote into the working folder
            raise ConfigError(f"{flag} is empty: name a file or a folder (left out, each output goes beside its input)"
                              if flag == "--output" else f"{flag} is empty: name a file")
    from .video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    # Trials: an NPZ was written as h.txt, a CSV as x.npz. The maps' binary archive by its own name
    # only; a text table by any name but another kind of file's.
    kinds = {".csv", ".jsonl", ".json", ".npz", ".npy", *VIDEO_EXTENSIONS, *IMAGE_EXTENSIONS}
    for flag, path, kind, own, strict in (("--stats", args.stats, "CSV table", ("a .csv", ".csv"), False),
                                          ("--detections", args.detections, "JSON Lines file",
                                           ("a .jsonl", ".jsonl", ".json"), False),
                                          ("--heatmaps", args.heatmaps, "numpy .npz archive", ("an .npz", ".npz"), True)):
        ext = os.path.splitext(path or "")[1].lower()
        if path and ext not in own[1:] and (strict or ext in kinds):
            raise ConfigError(f"{flag} writes a {kind}: name {own[0]} file. Got {path}")

    from .engine import Engine

    if args.list_layers:  # nothing is annotated: the layers of the model the options name
        from .options import list_layers

        list_layers(config, frame_hw=_first_frame_size(args.inputs))  # (`| head`: _PipeSafe)
        return 0

    from .annotate import plan_jobs
    from .models import model_kind

    not_a_detector = ConfigError(f"--detections needs an object detector; {config.model} is not one "
                                 "(e.g. --model fasterrcnn_mobilenet_v3_large_320_fpn)")
    if args.detections and model_kind(config.model) not in ("detector", "yolo", "factory"):  # before anything is made
        raise not_a_detector
    skipped: list = []
    short: list[str] = []
    jobs = plan_jobs(args.inputs, args.output, force=args.force, stats=args.stats, heatmaps=args.heatmaps,
                     detections=args.detections, image_format=args.image_format,
                     skip_existing=args.skip_existing, skipped=skipped, short=short,
                     max_frames=args.max_frames)
    if skipped:
        _say("note", f"{counted(len(skipped), 'input')} skipped: "
                     f"{'their output exists' if len(skipped) > 1 else 'its output exists'} (--skip-existing)")
    for why in short:  # skipped as done, but not whole: the user decides
        _say("warning", why)
    if not jobs:
        asked = [f"{flag} {path}" for flag, path in (("--stats", args.stats), ("--heatmaps", args.heatmaps),
                                                      ("--detections", args.detections)) if path]
        if asked:  # (a trial: the tables asked for were silently not there)
            _say("note", f"nothing left to annotate, so nothing was written to {', '.join(asked)}")
        return 0

    # Offline without cached ImageNet weights (explicit --weights imagenet included) the untrained
    # network runs, and the user is told plainly; --weights none is the way to ask for it quietly.
    engine = Engine(config, fallback_untrained=True)
    if args.detections and not engine.loaded.detector:  # a factory's network is known once built
        raise not_a_detector
    said = engine.backend.warning  # known before a frame where it is the precision's (bf16 emulated)
    for warning in (engine.warning, engine.loaded.note, _fixed_size_note(engine, jobs[0].input, args.typed), said):
        if warning:
            _say("warning", warning)
    from .options import cpu_cores

    cores = cpu_cores()
    if args.threads > cores and engine.device.type == "cpu":  # (a trial: --threads 999 ran 4x slower, nothing said)
        _say("note", f"--threads {args.threads} is more than this machine's {cores} CPU cores: slower, not faster "
                     "(0, the default, shares them with the encoder)")
    boxes_only = [flag for flag, given in (("--score", "score" in args.typed), ("--in-boxes", look.in_boxes),
                                           ("--no-boxes", not look.boxes)) if given]
    if boxes_only and not engine.loaded.detector:  # (a trial: taken without a word)
        _say("note", f"{', '.join(boxes_only)}: for a detector's boxes; {config.model} gives none, so "
                     f"{'they are' if len(boxes_only) > 1 else 'it is'} not used")
    if "optimize" in args.typed and not getattr(engine.backend, "can_trace", False):  # (a trial: taken without a word)
        why = (f"{config.model} has no traced copy" if engine.backend.name == "torch" and engine.device.type == "cpu"
               else f"{engine.backend.name} on {engine.device.type} runs this network")
        _say("note", f"--no-optimize: for --backend torch on the CPU (its traced copy); {why}, so it is not used")
    same = {"jpeg": "jpg", "tif": "tiff"}
    named = [j.output.name for j in jobs if j.named_by_output
             and same.get(ext := j.output.suffix.lower().lstrip("."), ext) != args.image_format]
    if "image_format" in args.typed and args.image_format != "same" and named:  # (a trial: a WebP, nothing said)
        _say("note", f"--image-format {args.image_format} is not used for {named[0]}: -o names that file, and its "
                     "extension is its format")
    import torch

    previous = torch.get_num_threads()
    encoder_threads = 0  # x264's own choice beside a GPU
    if engine.device.type == "cpu":
        # Decoding and encoding run beside the network: an OpenMP team as large as the machine
        # then keeps waiting for its descheduled members (measured 8x slower on 2 busy cores).
        encoder_threads = headless_threads(engine, args.threads)
    try:
        # the images' tables are named as the plan named them: by every video input, skipped ones too
        from .annotate.jobs import is_image_name

        with_videos = any(not is_image_name(str(p)) for p in [*(j.input for j in jobs), *skipped])
        # what a whole video's note never names as the parts of stopped runs: this run's own files
        from .annotate import image_table

        keep = [*(p for j in jobs for p in (j.input, j.output, *j.tables)), *skipped,
                *(t for t in (image_table(n, with_videos) for n in (args.stats, args.heatmaps, args.detections)) if t)]
        return _annotate_all(jobs, engine, look, args, encoder_threads, with_videos, keep)
    finally:
        # known after the first frame: ONNX Runtime fell back to torch (the precision's was said before)
        if engine.backend.warning and engine.backend.warning != said:
            _say("warning", engine.backend.warning)
        torch.set_num_threads(previous)  # callers in the same process (tests, notebooks) keep theirs


def _annotate_all(jobs: list, engine: object, look: object, args: argparse.Namespace, encoder_threads: int,
                  with_videos: bool, keep: list) -> int:
    from .annotate import annotate_file

    videos = [j for j in jobs if not j.is_image]
    status = _annotate_images([j for j in jobs if j.is_image], engine, look, args, with_videos)
    if status in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        return status
    for job in videos:
        t0 = time.perf_counter()
        try:
            result = annotate_file(engine, job, look, batch_size=args.batch_size, overwrite=args.force,
                                   progress=not args.quiet, crf=args.crf, preset=args.preset,
                                   encoder_threads=encoder_threads, max_frames=args.max_frames, keep=keep)
        except EigenCamError as exc:
            if len(jobs) == 1:
                raise
            _say("error", f"{job.input}: {exc}")
            status = EXIT_ERROR
            if getattr(exc, "stop_requested", False):  # Ctrl-C or SIGTERM came while it failed: no next input
                word, code = _stopped()
                _say(word, f"stopped before {counted(len(videos) - videos.index(job) - 1, 'more video')}")
                return code
            continue
        seconds = time.perf_counter() - t0
        if result.removed:
            _say("note", f"removed {counted(len(result.removed), 'part file')} left by runs that died: "
                         + ", ".join(p.name for p in result.removed))
        if result.interrupted:
            word, code = _stopped()
            if result.frames:
                kept = (f"; {result.kept} is kept as it was" if result.kept
                        else "; run again (--skip-existing: what is not done) to annotate it whole")
                _say(word, f"partial output: {result.frames} frames written to {result.output} "
                           f"(complete and playable up to there){kept}")
            else:
                _say(word, f"no frame of {job.input} was processed; nothing written")
            return code
        _finished.append(result.output)  # (before anything more is said: a stop meanwhile says it)
        if result.parts:
            _say("note", f"{result.output.name} is whole now; files named as the parts of stopped runs are beside "
                         "it (left as they are: delete them when no longer needed): "
                         + ", ".join(p.name for p in result.parts))
        for note in (result.size_note, result.audio_note, result.streams_note, result.colour_note, result.clock_note,
                     _blank_maps(result.boxless, result.frames, "frame", job.input.name, engine)):
            if note:
                _say("note", note)
        if result.warning:
            _say("warning", f"{result.warning}; annotated what decoded: {result.output}")
            status = max(status, EXIT_DAMAGED) if status != EXIT_ERROR else status
        fps = result.frames / seconds if seconds > 0 else 0.0
        print(f"{result.frames} frame{'s' * (result.frames != 1)} in {seconds:.1f} s ({fps:.1f} fps) -> {result.output}",
              flush=True)
        if result.stop_requested:  # Ctrl-C or SIGTERM while the file was being finished: it is complete
            word, code = _stopped()
            _say(word, f"stopped after finishing {result.output} (complete)")
            return code
    return status


def _blank_maps(count: int, total: int, unit: str, name: str | None, engine, example: str | None = None) -> str | None:
    """What to say where ``--in-boxes`` drew ``count`` of ``total`` frames or images with no map at
    all: no box scored the threshold there (a trial: blank maps, without a word)."""
    if not count:
        return None
    if count == 1 and example:
        which = example
    elif total == 1:
        which = f"its one {unit}"
    else:
        which = (f"all {counted(total, unit)}" if count == total
                 else f"{count} of {counted(total, unit)}" + (f" (e.g. {example})" if example else ""))
    return (f"{name + ': ' if name else ''}{which} had no box scoring at least {engine.config.score:g}, so "
            f"{'its map is' if count == 1 else 'their maps are'} blank (--in-boxes draws the map inside the boxes "
            "only; a lower --score keeps more boxes)")


def _annotate_images(jobs: list, engine: object, look: object, args: argparse.Namespace, with_videos: bool) -> int:
    """The images of the run, all at once (batched by size); returns the exit status so far."""
    if not jobs:
        return 0
    from .annotate import annotate_images, image_table
    from .errors import SourceError

    result = annotate_images(engine, jobs, look, batch_size=args.batch_size, progress=not args.quiet,
                             stats=image_table(args.stats, with_videos), heatmaps=image_table(args.heatmaps, with_videos),
                             detections=image_table(args.detections, with_videos),
                             overwrite=args.force)
    if len(jobs) == 1 and result.failed:
        raise SourceError(result.failed[0][1])
    for path, reason in result.failed:
        _say("error", reason if str(path) in reason else f"{path}: {reason}")
    for path, note in result.notes:
        _say("note", f"{path.name}: {note}")
    if note := _blank_maps(len(result.boxless), len(result.written), "image", None, engine,
                           result.boxless[0].name if result.boxless else None):
        _say("note", note)
    where = {p.parent for p in result.written}
    target = str(next(iter(where))) if len(where) == 1 else f"{len(where)} folders"
    if len(jobs) == 1 and result.written:
        target = str(result.written[0])
    if result.interrupted:
        word, code = _stopped()
        _say(word, f"{len(result.written)} of {len(jobs)} images written to {target} (each complete)")
        return code
    _finished.extend(result.written)
    rate = len(result.written) / result.seconds if result.seconds > 0 else 0.0
    print(f"{len(result.written)} image{'s' * (len(result.written) != 1)} in {result.seconds:.1f} s ({rate:.1f} images/s) -> {target}", flush=True)
    return EXIT_ERROR if result.failed else 0


if __name__ == "__main__":
    sys.exit(annotate_main(sys.argv[1:]))
