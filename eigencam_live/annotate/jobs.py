"""What to annotate and where the results go: inputs (files, folders, globs; videos and images)
expanded and checked, and every output planned, before a model is built."""

from __future__ import annotations

import glob as globlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eigencam_live.errors import SinkError, SourceError, counted
from eigencam_live.video import IMAGE_EXTENSIONS, STREAM_SCHEMES, VIDEO_EXTENSIONS, open_source

__all__ = ["IMAGE_FORMATS", "OUTPUT_SUFFIX", "VIDEO_OUTPUT_EXTENSIONS", "Job", "expand_inputs", "plan_jobs"]

#: ``clip.mp4`` is annotated as ``clip.eigencam.mp4`` unless told otherwise.
OUTPUT_SUFFIX = ".eigencam.mp4"
#: What a video's output may be called: the file is MP4 (H.264, the audio copied or AAC).
VIDEO_OUTPUT_EXTENSIONS = (".mp4", ".m4v")
#: ``cat.jpg`` is annotated as ``cat.eigencam.png`` (``--image-format``: the others, or ``same``).
IMAGE_FORMATS = ("png", "jpg", "webp", "bmp", "tiff", "same")
_MARK = ".eigencam."  # in every output name: folders and globs skip earlier outputs


@dataclass(frozen=True)
class Job:
    """One input file and where its outputs go.

    Attributes:
        stats, heatmaps, detections: a video's own CSV, NPZ and JSON lines; images share the run's
            (``annotate_images``).
        named_by_output: ``output`` is the file ``-o`` names, not a name made for the input (its
            extension then says its format, whatever ``--image-format`` says).
    """

    input: Path
    output: Path
    stats: Path | None = None
    heatmaps: Path | None = None
    detections: Path | None = None
    named_by_output: bool = False

    def __post_init__(self) -> None:
        # a str or any os.PathLike names a file as a Path does (a library trial: 'str' object has
        # no attribute 'is_dir', deep inside the run)
        for name in ("input", "output", "stats", "heatmaps", "detections"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))

    @property
    def tables(self) -> list[Path]:
        """The files written beside the output."""
        return [p for p in (self.stats, self.heatmaps, self.detections) if p is not None]

    @property
    def is_image(self) -> bool:
        return is_image_name(str(self.input))


def is_image_name(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _is_input_name(path: str) -> bool:
    """A video or an image a folder or a glob brings: by its extension; not an earlier output, nor a
    hidden file (macOS's ``._NAME.jpg`` beside each file on a foreign disk is no picture)."""
    name = os.path.basename(path).lower()
    return name.endswith(VIDEO_EXTENSIONS + IMAGE_EXTENSIONS) and _MARK not in name and not name.startswith(".")


def expand_inputs(specs: list[str]) -> list[Path]:
    """Files, folders (their videos and images, not recursive) and globs -> a list of files, in order.

    Folders and globs skip earlier outputs (``*.eigencam.*``). Named files are taken as they are
    (whether they hold video is found out when they are opened).

    Raises:
        SourceError: a missing file, a folder without videos or images, a glob that matches nothing,
            a URL or a webcam (annotate takes files).
    """
    out: list[Path] = []
    for spec in specs:
        path = os.path.expanduser(spec)
        if spec.strip().lower().startswith(STREAM_SCHEMES):
            raise SourceError(f"{spec} is a network stream; annotate takes video and image files "
                              f"(use the app for live input)")
        if os.path.isdir(path):
            found = sorted(p for p in os.listdir(path) if _is_input_name(p) and os.path.isfile(os.path.join(path, p)))
            if not found:
                below = [d for d in sorted(os.listdir(path)) if os.path.isdir(os.path.join(path, d))
                         and any(_is_input_name(p) for p in os.listdir(os.path.join(path, d)))]
                hint = (f" (folders are not searched below: {counted(len(below), 'subfolder')} "
                        f"{'holds' if len(below) == 1 else 'hold'} some, which a glob such "
                        f"as \"{os.path.join(spec, '*', '*')}\" takes)") if below else ""
                raise SourceError(f"no videos or images in folder {spec}{hint}")
            out += [Path(path) / p for p in found]
        elif os.path.exists(path):
            if not os.path.isfile(path):
                raise SourceError(f"not a regular file: {spec}")
            out.append(Path(path))
        elif spec.strip().isdigit():  # a webcam's index, as the app takes it: not opened here (a trial:
            # "no camera at index 0" was said, as if annotate took cameras)
            raise SourceError(f"no such file: {spec} (a number names a webcam in the app; annotate takes video and "
                              "image files)")
        elif any(c in path for c in "*?["):
            found = sorted(p for p in globlib.glob(path) if _is_input_name(p) and os.path.isfile(p))
            if not found:
                raise SourceError(f"no videos or images match {spec}")
            out += [Path(p) for p in found]
        else:
            raise SourceError(f"no such file: {spec}")
    # One file named twice (a folder and a glob, a link beside its target) is annotated once, under
    # its own name rather than a link's (a trial: link.jpg -> prog.jpg gave link.eigencam.png alone)
    unique: dict[Path, Path] = {}
    for p in out:
        first = unique.setdefault(p.resolve(), p)
        if first.is_symlink() and not p.is_symlink():
            unique[p.resolve()] = p
    return list(unique.values())


def _derived(path: Path | None, input_path: Path, many: bool) -> Path | None:
    """``--stats s.csv`` for several videos becomes ``s.<input>.csv`` for each."""
    if path is None or not many:
        return path
    return path.with_name(f"{path.stem}.{input_path.stem}{path.suffix}")


def _output_name(inp: Path, image_format: str) -> str:
    if not is_image_name(str(inp)):
        return inp.stem + OUTPUT_SUFFIX
    ext = inp.suffix.lower().lstrip(".") if image_format == "same" else image_format
    return f"{inp.stem}{_MARK}{ext}"


def plan_jobs(
    specs: list[str] | str,
    output: str | None = None,
    *,
    force: bool = False,
    stats: str | None = None,
    heatmaps: str | None = None,
    image_format: str = "png",
    detections: str | None = None,
    skip_existing: bool = False,
    skipped: list[Path] | None = None,
    short: list[str] | None = None,
    max_frames: int | None = None,
) -> list[Job]:
    """Resolve inputs and outputs, and check them all before any work starts.

    Args:
        specs: files, folders or globs of videos and images (one alone: a str or a path).
        output: a file (one input), a folder (created if needed), or ``None`` (beside each input,
            as ``NAME.eigencam.mp4`` / ``NAME.eigencam.png``). A path ending in ``/`` is a folder.
        force: allow overwriting existing outputs (never an input).
        stats, heatmaps, detections: a video's CSV, NPZ and JSON lines (``FILE.<input>.csv`` for each
            of several videos); all images of the run share one of each (see ``annotate_images``).
        image_format: one of :data:`IMAGE_FORMATS` (``same``: the input's own).
        skip_existing: leave out the inputs whose output exists (a run stopped, or a file added to
            a folder: the rest is annotated), each appended to ``skipped`` where one is given;
            a skipped video whose output is not whole (:func:`_unfinished`: a ``--max-frames``
            run's) is said in ``short`` where one is given (``max_frames``: the frames this run
            asks for, the whole of what it would write).

    Raises:
        SourceError: bad inputs. SinkError: an output that exists (without ``force``), equals an
        input, or lies in a folder that cannot be written.
    """
    if image_format not in IMAGE_FORMATS:
        raise SinkError(f"--image-format must be one of {', '.join(IMAGE_FORMATS)}. Got {image_format!r}")
    if isinstance(specs, (str, os.PathLike)):  # one (a library trial: read a character at a time, "no such file: i")
        specs = [specs]
    specs = [os.fspath(spec) for spec in specs]
    if output is not None:
        output = os.fspath(output)
    inputs = expand_inputs(specs)
    named = {Path(os.path.expanduser(spec)).resolve() for spec in specs if os.path.isfile(os.path.expanduser(spec))}
    videos = [p for p in inputs if not is_image_name(str(p))]
    many = len(videos) > 1
    folder: Path | None = None
    if output is not None:
        out = Path(os.path.expanduser(output))
        named_folder = out.is_dir() or output.endswith(("/", os.sep))
        # a folder or a glob of inputs goes to a folder, however many files it holds today
        gathered = any(os.path.isdir(os.path.expanduser(spec)) or (not os.path.exists(os.path.expanduser(spec))
                                                                    and any(c in spec for c in "*?[")) for spec in specs)
        # several named inputs go to a folder even where they are one file (a trial: a.jpg in/../a.jpg
        # -o dir, annotated once, took dir for the image's name: "must be an image")
        given = max(len(inputs), len(specs))
        if given > 1 or named_folder or gathered:
            folder = out
            why = (f"{given} inputs need" if given > 1 else "a folder or glob of inputs needs" if gathered
                   else "-o ending in / names")
            if folder.exists() and not folder.is_dir():
                raise SinkError(f"output {folder} is not a folder ({why} an output folder)")
            if not named_folder and folder.suffix.lower() in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS:
                raise SinkError(f"output {folder} names a file, but {why} an output folder "
                                "(end it with / for a folder of that name)")
    jobs = []
    targets: dict[Path, Path] = {}  # resolved output -> its input
    clashes: list[str] = []  # all of them at once (a trial: found one run at a time)
    for inp in inputs:
        if folder is not None:
            target = folder / _output_name(inp, image_format)
        elif output is not None:
            target = Path(os.path.expanduser(output))
        else:
            target = inp.with_name(_output_name(inp, image_format))
        if target.resolve() == inp.resolve() or (target.exists() and os.path.samefile(target, inp)):
            raise SinkError(f"output {target} is the input: refusing to write over it")
        if (first := targets.get(target.resolve())) is not None:
            if first.parent != inp.parent:
                hint = " (inputs of one name from two folders: give each folder its own -o)"
            elif (is_image_name(str(inp)) and is_image_name(str(first)) and image_format != "same"
                  and inp.suffix.lower() != first.suffix.lower()):
                hint = " (--image-format same keeps each image's own format)"  # photo.bmp and photo.webp
            else:  # clip.mp4 and clip.mkv; photo.jpg and photo.JPG (a trial: sent to --image-format same)
                hint = (" (inputs whose names differ only in their extension: rename one, or annotate each in a run of "
                        "its own with its own -o)")
            clashes.append(f"{first} and {inp} would both write {target}{hint}")
            continue
        targets[target.resolve()] = inp
        if target.is_dir():
            raise SinkError(f"output {target} is a folder")
        if is_image_name(str(inp)):  # the name first: --force would not make a wrong one right
            if not is_image_name(str(target)):
                raise SinkError(f"output {target} for image {inp} must be an image ({', '.join(IMAGE_EXTENSIONS)})")
        elif target.suffix.lower() not in VIDEO_OUTPUT_EXTENSIONS:
            raise SinkError(f"output {target} for video {inp} must end in {' or '.join(VIDEO_OUTPUT_EXTENSIONS)} "
                            "(annotate writes H.264 in MP4)")
        if target.exists() and not force:
            if skip_existing:
                if skipped is not None:
                    skipped.append(inp)
                if short is not None and not is_image_name(str(inp)) and (why := _unfinished(inp, target, max_frames)):
                    short.append(why)
                continue
            raise SinkError(f"{target} exists (use --force to overwrite, or --skip-existing to annotate only the "
                            "inputs without an output)")
        if is_image_name(str(inp)):
            # Images are read once, when annotated (a folder may hold thousands); one that cannot
            # be read is reported then, by name.
            jobs.append(Job(inp, target, named_by_output=folder is None and output is not None))
            continue
        # Open each video now (a header and a first frame): a text file named .mp4, or a 1x1
        # video, is refused before a model is built or any output written; one a folder or a glob
        # brought is named when its turn comes, and the others are annotated (as images are).
        try:
            with open_source(str(inp)) as source:
                if source.info.width < 2 or source.info.height < 2:
                    raise SourceError(f"{inp} is {source.info.width}x{source.info.height} pixels: too small to "
                                      "annotate (at least 2x2)")
        except SourceError:
            if inp.resolve() in named:
                raise
        jobs.append(Job(inp, target, *(_derived(Path(p) if p else None, inp, many) for p in (stats, heatmaps, detections))))
    if clashes:
        more = f"; and {counted(len(clashes) - 1, 'more input')} would write another's output" if len(clashes) > 1 else ""
        raise SinkError(clashes[0] + more)
    extras = [p for j in jobs for p in j.tables]
    if any(j.is_image for j in jobs):  # the images' shared tables
        extras += [p for p in (image_table(t, len(videos) > 0) for t in (stats, heatmaps, detections)) if p]
    written = set(targets)  # every file of the run is written once: never two of them at one path
    for extra in extras:
        if extra.resolve() in written:
            raise SinkError(f"{extra} would be written twice: the outputs and the --stats, --heatmaps and --detections "
                            "files each need a name of their own")
        written.add(extra.resolve())
        if extra.is_dir():
            raise SinkError(f"{extra} is a folder (--stats, --heatmaps and --detections take file names)")
        if extra.exists() and not force:
            if skip_existing:  # --force and --skip-existing exclude each other
                raise SinkError(f"{extra} exists: name this run's tables anew (with --skip-existing they hold only "
                                "the inputs it annotates)")
            raise SinkError(f"{extra} exists (use --force to overwrite)")
        if extra.resolve() in {p.resolve() for p in inputs}:
            raise SinkError(f"{extra} is an input: refusing to write over it")
    parents = sorted({p.parent for p in [*(j.output for j in jobs), *extras]})
    for parent in parents:
        if parent != folder:
            _check_writable(parent)
    if folder is not None:  # made once everything else is known to be right
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
        _check_writable(folder)
    return jobs


def _unfinished(inp: Path, target: Path, max_frames: int | None = None) -> str | None:
    """What to say where the existing output ``target`` of video ``inp`` is not its whole
    annotation (fewer frames than the input, or than ``max_frames``: a ``--max-frames`` run; or
    no video at all), else ``None``. The frame counts are the headers' (``open_source``), with the
    same allowance for containers' rounding as a cut-off input's check."""
    counts = []
    for path in (inp, target):
        try:
            with open_source(str(path)) as source:
                counts.append(source.info.frame_count)
        except SourceError:
            if path == inp:
                return None  # the input's own fault: said when it is annotated, not here
            return f"{target} cannot be read as a video, and was skipped as done: delete it to annotate {inp} again"
    whole, written = counts
    if whole and max_frames is not None:  # what this run would write (a re-trial: warned of that very output)
        whole = min(whole, max_frames)
    if whole and written is not None and written < whole - max(2, whole // 100):
        return (f"{target} holds {written} of the {whole} frames of {inp} (a --max-frames run, or a damaged "
                "input?), and was skipped as done: delete it to annotate the video again")
    return None


def image_table(path: str | Path | None, with_videos: bool) -> Path | None:
    """Where the images of a run put their stats or heatmaps: ``FILE`` itself, or
    ``FILE.images.EXT`` beside the videos' ``FILE.<video>.EXT``."""
    if path is None:
        return None
    path = Path(path)
    return path.with_name(f"{path.stem}.images{path.suffix}") if with_videos else path


def _check_writable(folder: Path) -> None:
    if not folder.is_dir():
        blocking = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if blocking == folder:
            raise SinkError(f"output folder {folder} is a file, not a folder")
        if blocking is not None and not blocking.is_dir():  # a file where a folder of the path should be
            raise SinkError(f"output folder {folder} does not exist, and cannot: {blocking} is a file, not a folder")
        raise SinkError(f"output folder {folder} does not exist")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise SinkError(f"cannot write in output folder {folder}: {exc.strerror or exc}") from None
