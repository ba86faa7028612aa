"""Layering: the library and the headless annotate path never load Qt (servers have no display)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "eigencam_live"
QT = ("PyQt5", "PyQt6", "PySide2", "PySide6", "sip", "ui")


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[str]]:
    """In one fresh interpreter without a display (importing torch twice costs seconds): the Qt-ish
    modules loaded by the annotate CLI path, then by importing every module of the library."""
    has_cli = importlib.util.find_spec("eigencam_live.cli") is not None
    modules = sorted(".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py")
                     if p.stem != "__init__")
    probe = (
        "import json, sys\n"
        f"def qt(): return sorted(m for m in sys.modules if m.split('.')[0] in {QT!r})\n"
        "seen = {}\n"
        f"if {has_cli}:\n"
        "    import main\n"
        "    try:\n"
        "        main.main(['annotate', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    import eigencam_live.cli\n"
        "    seen['cli'] = qt()\n"
        "import eigencam_live\n"
        + "".join(f"import eigencam_live.{m}\n" for m in modules)
        + "seen['library'] = qt()\n"
        "print(json.dumps(seen))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_annotate_cli_path_loads_no_qt(loaded):
    if "cli" not in loaded:
        pytest.skip("eigencam_live.cli does not exist yet")
    assert loaded["cli"] == []


def test_importing_the_library_loads_no_qt(loaded):
    assert loaded["library"] == []


def test_no_module_of_the_library_imports_qt_even_lazily():
    """Imports inside functions escape the sys.modules check until they run: read the source."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            offenders += [f"{path.relative_to(PACKAGE)}:{node.lineno} {n}" for n in names if n.split(".")[0] in QT]
    assert offenders == []
