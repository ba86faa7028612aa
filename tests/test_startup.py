"""The app's first second (:mod:`ui.splash`): no display is said before torch is imported, and a
splash is up while it is, until the window shows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ui import splash

ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="X11 and Wayland only")


def _env(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"), EIGENCAM_CACHE=str(tmp_path / "cache"))
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "QT_XCB_GL_INTEGRATION"):
        env.pop(name, None)
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


@linux_only
def test_no_display_is_said_for_what_names_none():
    assert "neither DISPLAY nor WAYLAND_DISPLAY" in splash.no_display({})
    for env in ({"WAYLAND_DISPLAY": "wayland-0"}, {"QT_QPA_PLATFORM": "offscreen"}, {"DISPLAY": "odd-form"}):
        assert splash.no_display(env) is None, env


@linux_only
def test_a_display_no_x_server_answers_at_is_said(tmp_path):
    """A DISPLAY left from a lost ssh -X: Qt aborted (exit 134) in six lines (a trial)."""
    import socket

    free = next(n for n in range(600, 700) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    assert splash.no_display({"DISPLAY": f":{free}"}) == (
        f"no X server answers at DISPLAY=:{free}: run it on a desktop, under ssh -X or xvfb-run, or annotate "
        "headless with `python main.py annotate INPUT`")
    with socket.socket() as server:  # something listening on X's TCP port for display N: taken as one
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        if port > 6000:
            assert splash.no_display({"DISPLAY": f"127.0.0.1:{port - 6000}"}) is None


@pytest.mark.parametrize(("argv", "opens"), [
    ([], True), (["--source", "demo", "--layer", "features"], True), (["--labels", "a.txt"], True),
    (["-h"], False), (["--help"], False), (["--list-layers"], False), (["--model", "x", "--list-l"], False),
    (["--list-layers=1"], False), (["--", "--help"], True), (["--li"], True),  # --li is --list-layers or --labels
])
def test_options_that_open_no_window_get_no_splash(argv, opens):
    assert splash._opens_window(argv) is opens


@linux_only
def test_the_splash_leaves_x11s_opengl_out_or_does_not_show():
    """Mesa's OpenGL loads the system's LLVM, and Triton's, loaded after it by torchvision, crashed
    the process (a segfault under Xvfb): the splash shows where OpenGL can be left out."""
    env = {"DISPLAY": ":0"}
    assert splash._safe_before_torch(env) and env["QT_XCB_GL_INTEGRATION"] == "none"
    assert not splash._safe_before_torch({"DISPLAY": ":0", "QT_XCB_GL_INTEGRATION": "xcb_glx"})
    assert not splash._safe_before_torch({"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "wayland"})
    assert splash._safe_before_torch({"QT_QPA_PLATFORM": "offscreen"})


def test_no_splash_on_windows(monkeypatch):
    """torch 2.9 and later fail to load their DLLs on Windows once Qt's are loaded (WinError 1114)."""
    monkeypatch.setattr(sys, "platform", "win32")
    assert not splash._safe_before_torch({})


@linux_only
def test_without_a_display_the_app_says_so_in_one_line_before_torch_loads(tmp_path):
    code = "import sys, main; code = main.main(['--source', 'demo']); print(code, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == ["2", "False"], done.stdout + done.stderr
    assert done.stderr.startswith("error: no display to open the app's window on") and done.stderr.count("\n") == 1
    assert "annotate" in done.stderr


# main.py's app: the splash is up before torch is imported, and closes once the window shows (the
# window is then closed: the run ends with code 0).
_APP = r"""
import sys
import ui.splash as splash

real_show, real_close = splash.show_splash, splash.close_splash

def show(argv):
    real_show(argv)
    print("splash", splash._splash is not None and splash._splash.isVisible(), "torch" in sys.modules, flush=True)

def close(window=None):
    up = splash._splash is not None and splash._splash.isVisible()
    real_close(window)
    print("window", window.isVisible(), up, splash._splash is None, flush=True)
    from PyQt5.QtCore import QTimer
    QTimer.singleShot(0, window.close)

splash.show_splash, splash.close_splash = show, close
import main
main.run(sys.argv[1:])
"""


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.skipif(shutil.which("xvfb-run") is None or sys.platform != "linux", reason="needs Xvfb")
def test_on_x11_the_splash_and_the_window_come_up_with_torch_loaded_between(tmp_path):
    """Qt's X11 OpenGL integration loads Mesa's LLVM, and Triton's, loaded after it by torchvision,
    segfaulted the process: the real X11 path, under Xvfb (offscreen has no OpenGL to load)."""
    done = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-c", _APP, "--no-settings", "--source", "scene", "--model",
         "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "--demo-size", "160x120", "--threads", "1"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=140,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["splash True False", "window True True True"], done.stdout + done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_the_splash_is_up_while_torch_loads_and_goes_when_the_window_shows(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _APP, "--no-settings", "--source", "scene", "--model", "mobilenet_v3_small",
         "--weights", "none", "--short-side", "64", "--demo-size", "160x120", "--threads", "1"],
        cwd=tmp_path, env=_env(tmp_path, QT_QPA_PLATFORM="offscreen"), capture_output=True, text=True, timeout=140,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["splash True False", "window True True True"], done.stdout + done.stderr[-3000:]


# A setting the command line typed that cannot be had, said while the splash waits for the window
# (it runs events then): the window closed before the event loop ran, and the app never ended (a
# trial: --device cuda without a GPU, --precision fp16 on the CPU hung until killed).
_FATAL_IN_SPLASH = r"""
import sys, time
import ui.splash as splash

real_close = splash.close_splash

def close(window=None):
    from PyQt5.QtWidgets import QApplication
    deadline = time.monotonic() + 60
    while window.fatal_error is None and time.monotonic() < deadline:
        QApplication.processEvents()
    print("closed before the loop:", not window.isVisible(), flush=True)
    real_close(window)

splash.close_splash = close
import main
main.run(sys.argv[1:])
"""


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_typed_setting_refused_while_the_splash_is_up_ends_the_app(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _FATAL_IN_SPLASH, "--no-settings", "--source", "scene", "--model", "mobilenet_v3_small",
         "--weights", "none", "--device", "cpu", "--precision", "fp16", "--demo-size", "160x120", "--threads", "1"],
        cwd=tmp_path, env=_env(tmp_path, QT_QPA_PLATFORM="offscreen"), capture_output=True, text=True, timeout=140,
    )
    assert done.stdout.splitlines() == ["closed before the loop: True"], done.stdout + done.stderr[-3000:]
    assert done.returncode == 2 and done.stderr.count("error: ") == 1 and "fp16" in done.stderr, done.stderr[-3000:]
