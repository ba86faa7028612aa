"""The cache of exported networks on disk: where it is, what a file's name holds, how it is
kept within its size (least recently used out first, unfinished files of dead processes too)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
import time
from pathlib import Path

from torch import nn

from eigencam_live.processes import alive

__all__ = ["CACHE_LIMIT_BYTES", "cache_dir", "code_digest", "mark_used", "part_path", "trim_cache"]

#: The exported networks kept on disk, at most (the least recently used go first): a new library
#: version, new weights or a new layer is a new file (20 to 100 MB each), and never a reason for
#: the cache to grow without end.
CACHE_LIMIT_BYTES = 2 << 30
#: An unfinished export older than this (seconds) was left by a process that died: removed.
_STALE_PART_S = 3600.0


def cache_dir() -> Path:
    """Where exported networks are kept: ``$EIGENCAM_CACHE``, else ``$XDG_CACHE_HOME`` or
    ``~/.cache``, under ``eigencam-live/onnx``."""
    if os.environ.get("EIGENCAM_CACHE"):
        return Path(os.environ["EIGENCAM_CACHE"]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eigencam-live" / "onnx"


def trim_cache(folder: Path, limit: int | None = None, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used exports (by modification time, which each use sets) until
    those in ``folder`` take at most ``limit`` bytes (default :data:`CACHE_LIMIT_BYTES`), never
    ``keep``; and unfinished exports an hour old, or left by a process of this machine that has
    ended (an app closed mid-export). Returns what was removed. Files another process removes
    meanwhile are skipped."""
    limit = CACHE_LIMIT_BYTES if limit is None else limit
    found = []
    for path in folder.glob("*.onnx"):
        try:
            info = path.stat()
        except OSError:
            continue
        found.append((info.st_mtime, info.st_size, path))
    removed = []
    total = sum(size for _, size, _ in found)
    for _, size, path in sorted(found):  # oldest first
        if total <= limit:
            break
        if keep is not None and path == keep:
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError:  # another user's file in a shared cache, a read-only folder: leave it
            continue
        removed.append(path)
        total -= size
    for part in folder.glob(".*.part"):
        try:
            if time.time() - part.stat().st_mtime > _STALE_PART_S or _writer_gone(part):
                part.unlink(missing_ok=True)
                removed.append(part)
        except OSError:
            continue
    return removed


def part_path(path: Path) -> Path:
    """Where an export to ``path`` is written first, named by this machine and process."""
    return path.with_name(f".{path.name}.{_HOST}~{os.getpid()}.part")


def _writer_gone(part: Path) -> bool:
    """Whether the process of this machine that was writing ``part`` has ended."""
    host, _, pid = part.name[: -len(".part")].rpartition(".")[2].rpartition("~")
    if host != _HOST or not pid.isdigit():
        return False  # another machine's (a shared cache): the hour decides
    return not alive(int(pid))


#: This machine's name as part names hold it.
_HOST = "".join(c for c in socket.gethostname() if c.isalnum() or c == "-") or "host"


def mark_used(path: Path) -> None:
    """Set ``path``'s modification time to now, the cache's record of use (:func:`trim_cache`);
    a file that cannot be touched (another user's, a read-only cache) keeps its time."""
    try:
        os.utime(path)
    except OSError:
        pass


def code_digest(net: nn.Module, source: str = "") -> str:
    """A digest of the source files of the network's classes outside installed packages, and of
    the factory's own file where ``source`` names one (``path/mynet.py:build``, ``mynet:build``):
    changed code is another export, and an export refused before is tried again (its refusal was
    remembered for good). The files are found from the classes' code itself: a factory's helper
    modules are gone from ``sys.modules`` once it has built the network."""
    files = set()
    for cls in {type(m) for m in net.modules()}:
        for klass in cls.__mro__:
            files.update(f.__code__.co_filename for f in vars(klass).values() if hasattr(f, "__code__"))
    files.update(_factory_files(source))
    h = hashlib.blake2b(digest_size=8)
    for name in sorted(f for f in files if f and "-packages" not in f and Path(f).is_file()):
        with contextlib.suppress(OSError):
            h.update(Path(name).read_bytes())
    return h.hexdigest()


def _factory_files(source: str) -> list[str]:
    """The file of a factory (``module:callable`` or ``path.py:callable``) and the Python files
    beside it (importable from it: its helper functions' changes count too), if it is one."""
    module = source.rsplit(":", 1)[0] if ":" in source else ""
    if module.endswith(".py"):
        file = str(Path(module).expanduser())
    else:  # the factory's module is imported (it built the network): never import anything here
        file = getattr(sys.modules.get(module), "__file__", None) if module else None
    if not file or "-packages" in file:
        return []
    return [str(p) for p in sorted(Path(file).parent.glob("*.py"))[:_BESIDE_MOST]] + [file]


#: The most Python files read beside a factory's file (a folder of hundreds is not the factory's).
_BESIDE_MOST = 64
