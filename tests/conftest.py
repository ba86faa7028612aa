"""Shared test setup: offscreen Qt, deterministic torch, few threads, no network."""

from __future__ import annotations

import os
import signal
import socket
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# ONNX exports go to a cache of this run's own, never the user's (one folder per test process,
# removed when the session ends).
os.environ["EIGENCAM_CACHE"] = __import__("tempfile").mkdtemp(prefix="eigencam-test-cache-")

import numpy as np
import pytest
import torch

torch.manual_seed(0)


def pytest_sessionfinish(session, exitstatus):
    __import__("shutil").rmtree(os.environ["EIGENCAM_CACHE"], ignore_errors=True)


# Ctrl-C reaches the processes the tests start, as in a terminal. A runner started as a background
# job of a script (`bash -c 'pytest' &`) inherits SIGINT ignored, and so would every annotate the
# tests start, which rightly leaves an ignored SIGINT alone: the Ctrl-C tests then failed (a CI run).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# One network thread: tests run capture, decode and encode threads beside the network, and an
# OpenMP team as wide as the machine then fights them for the cores (5-10x slower forwards).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never touch the network: any attempt to connect outside loopback fails loudly."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
            raise OSError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _qt_garbage_in_the_gui_thread(request):
    """After a test with Qt widgets, its windows (released by pytest-qt, freed only by the cyclic
    collector: their slots hold them) are collected here, on the GUI thread. Left to chance, a
    collection in the next test's worker thread deleted a window there: a segfault in CI, in an
    engine worker's signal emission (a run beside a GUI trial)."""
    yield
    if {"qtbot", "qapp"} & set(request.fixturenames):
        import gc

        gc.collect()


# Threads that libraries keep for the life of the process, by design.
_BACKGROUND = ("TMonitor", "tqdm_monitor")  # tqdm's monitor


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    """Fail any test that leaves a Python thread running, daemon or not: every thread is joined."""
    before = set(threading.enumerate())
    yield
    import time

    end = time.monotonic() + 3.0
    while True:
        leaked = [
            t for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.name.startswith(_BACKGROUND)
        ]
        if not leaked or time.monotonic() > end:
            break
        time.sleep(0.05)
    if leaked:
        pytest.fail(f"test left threads running: {[t.name for t in leaked]}")


def scene(height: int = 240, width: int = 320, *, corner: str = "tl", seed: int = 0) -> np.ndarray:
    """A structured BGR frame: a smooth textured background and one bright textured object.

    ``corner`` places the object: ``tl``, ``tr``, ``bl``, ``br`` or ``c``.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    bg = 60 + 20 * np.sin(xx / 23.0) + 20 * np.cos(yy / 31.0)
    img = np.stack([bg, bg * 0.9, bg * 0.8], axis=-1)
    img += rng.normal(0, 3, img.shape)
    s = min(height, width) // 3
    cy = {"t": s // 2 + 4, "b": height - s // 2 - 4, "c": height // 2}[corner[0]]
    cx = {"l": s // 2 + 4, "r": width - s // 2 - 4, "c": width // 2}[corner[-1]]
    y0, x0 = cy - s // 2, cx - s // 2
    checker = ((np.arange(s)[:, None] // 6 + np.arange(s)[None, :] // 6) % 2).astype(np.float32)
    obj = np.stack([230 * checker + 20, 40 + 120 * (1 - checker), 200 * checker], axis=-1)
    img[y0 : y0 + s, x0 : x0 + s] = obj
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def imagenet_offline(monkeypatch):
    """The engine's models load without their ImageNet weights, as offline with nothing cached
    (other weights as asked)."""
    import eigencam_live.engine as engine_module
    from eigencam_live.errors import WeightsUnavailableError

    real = engine_module.load_model

    def offline(name, weights="imagenet", **kw):
        if weights == "imagenet":
            raise WeightsUnavailableError(f"could not get ImageNet weights for {name} (offline)")
        return real(name, weights, **kw)

    monkeypatch.setattr(engine_module, "load_model", offline)


@pytest.fixture
def make_scene():
    return scene
