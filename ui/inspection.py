"""Inspection: snapshots (view, frame, map, settings), recordings and the compare grid (components
1 to N of a frame, or the component in use across layers), as the window's actions
(:class:`InspectionActions`, mixed into :class:`~ui.window.MainWindow`) and the grid's widget."""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from PyQt5.QtCore import QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QImage, QPainter, QPen
from PyQt5.QtWidgets import QWidget

from eigencam_live.config import input_size
from eigencam_live.models import Layer
from eigencam_live.video import shown_url

from . import commands as cmd
from .controls import weights_name
from .frame_view import draw_colorbar, image_array, last_panel, panels_of, to_qimage
from .shortcuts import shortcut
from .widgets import elide_name
from .worker import Packet

__all__ = ["CompareGrid", "InspectionActions", "default_snapshot_dir", "free_name", "layers_to_compare"]


def free_name(folder: Path, stem: str, suffixes: tuple[str, ...], given: set[Path]) -> str:
    """``stem``, else ``stem-2``, ``stem-3``, ...: the first name none of whose files (``name +
    suffix`` in ``folder``) exists or was given out before (``given``, which it joins: a recording
    is renamed into place only when it stops). A trial: two recordings, or two snapshots of one
    frame, within one second had one name, and the second replaced the first without a word."""
    for number in itertools.count(1):
        name = stem if number == 1 else f"{stem}-{number}"
        paths = [folder / (name + suffix) for suffix in suffixes]
        if not any(p in given or p.exists() for p in paths):
            given.update(paths)
            return name
    raise AssertionError("unreachable")


def default_snapshot_dir() -> Path:
    return Path.home() / "Pictures" / "eigencam-live"


#: Layers that only pass on or pad their input (and torch's ``*Pad2d`` modules; not a convolution
#: with its own padding, e.g. ``Conv2dStaticSamePadding``); Dropout passes it on in eval mode (timm's
#: efficientvit_b0 made a stage of the input picture through its stem's dropout).
_NOT_STAGES = frozenset({"Identity", "Pad", "Dropout", "Dropout2d", "DropPath"})
#: Activations by their module's kind: where a stage ends as its maps are read, as a block does.
_ACTIVATION = re.compile(r"(Leaky|P|R)?ReLU6?|SiLU|Swish|MemoryEfficientSwish|GELU|Hard[Ss]wish|Mish|S?ELU|CELU|\w*Act\w*")


def layers_to_compare(layers: list[Layer], current: str, count: int = 5, *, pyramid: bool = False) -> list[Layer]:
    """The layer in use and up to ``count - 1`` earlier stages, spaced through the network, in
    forward order: ``layers`` (forward order, as :meth:`~eigencam_live.engine.Engine.feature_layers`
    gives them) are grouped by their map's ``(h, w)``, and a stage is the outermost block (fewest
    dots in its name, among the layers that hold others, padding aside, and the activations, if any
    are there) that ends its group before ``current`` (a GUI trial: EfficientNet's stem ``_bn0``, a
    BatchNorm before its activation, was the stage at 112 x 112, not the block ``_blocks.0`` after
    it; a review: timm's deep-stem ResNets then took their stem's last bare conv, not ``act1`` after
    it); groups at ``current``'s own size are
    left out (they look alike); and with ``pyramid`` (a detector's, whose backbone stacks its levels
    on one grid), the coarser maps inside ``current`` (SSD's extra layers inside its backbone, 5x5 and
    2x2 beside its stacked 10x10: no earlier stage, a GUI trial; a U-Net's are, a review). With more stages than room, evenly spaced ones, the deepest kept.
    ``[]`` when ``current`` is not listed with a ``(C, h, w)`` shape. Padding layers are no stage:
    their maps carry a border (EfficientNet's static padding made stages of the padded picture)."""
    spatial = [layer for layer in layers if len(layer.shape) == 3]
    at = next((i for i, layer in enumerate(spatial) if layer.name == current), None)
    if at is None:
        return []
    here = spatial[at].shape[1:]
    blocks = {layer.name.rsplit(".", i)[0] for layer in layers if not _padding(layer)
              for i in range(1, layer.name.count(".") + 1)}  # (a padding child made EfficientNet's stem conv one)
    rank = lambda layer: (layer.name in blocks or bool(_ACTIVATION.fullmatch(layer.kind)),  # noqa: E731
                          -layer.name.count("."))
    stages: dict[tuple[int, ...], Layer] = {}  # insertion order: where each size's group starts
    for layer in spatial[:at]:
        size = layer.shape[1:]
        if size == here or _padding(layer) or (
                pyramid and size[0] * size[1] < here[0] * here[1] and layer.name.startswith(f"{current}.")):
            continue
        best = stages.get(size)
        if best is None or rank(layer) >= rank(best):
            stages[size] = layer  # the last of the outermost blocks: a stage's output
    order = {layer.name: i for i, layer in enumerate(spatial)}
    found = sorted(stages.values(), key=lambda layer: order[layer.name])
    room = max(0, count - 1)
    if len(found) > room:
        last = len(found) - 1
        picks = {round(i * last / (room - 1)) for i in range(room)} if room > 1 else {last} if room else set()
        found = [found[i] for i in sorted(picks)]
    return [*found, spatial[at]]


def _padding(layer: Layer) -> bool:
    """A padding layer (or an identity): its map is its input's, with a border."""
    return layer.kind in _NOT_STAGES or re.fullmatch(r"\w*Pad[123]d", layer.kind) is not None


class InspectionActions:
    """The window's inspection actions: snapshot, record, compare. A mixin of
    :class:`~ui.window.MainWindow`, whose state (``last_packet``, ``pipeline``, the configs, the
    controls) they read."""

    def snapshot(self, folder: str | Path | None = None) -> list[Path]:
        """Save the frame on screen: the view as shown (PNG, with the colour bar when it is on), the
        raw frame (PNG), the map (``.npy``, float32 ``(H, W)`` in ``[0, 1]``) and the settings that
        made it (``.json``: model, weights, layer, component, method, frame number and time, ...).
        Names count frames from 1, as the window does. Returns the four paths (``[]`` when nothing
        was saved, and the window says why)."""
        packet = self.last_packet
        if packet is None:
            self.say_error("nothing to save: no frame is shown yet")
            return []
        out = Path(folder) if folder else self.snapshot_dir
        number = packet.frame.index + 1
        try:
            out.mkdir(parents=True, exist_ok=True)
            ends = ("-view.png", "-frame.png", "-map.npy", ".json")
            stem = free_name(out, f"eigencam-{datetime.now():%Y%m%d-%H%M%S}-f{number:06d}", ends, self.names_given)
            paths = [out / (stem + end) for end in ends]
            fast = [cv2.IMWRITE_PNG_COMPRESSION, 1]
            if not cv2.imwrite(str(paths[0]), self.view_image(packet), fast) or not cv2.imwrite(
                    str(paths[1]), packet.frame.image, fast):
                raise OSError(f"cannot write PNG files into {out}")
            np.save(paths[2], packet.result.heatmap.astype(np.float32))
            paths[3].write_text(json.dumps(self.snapshot_settings(packet), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            self.say_error(f"snapshot failed: {exc}")
            return []
        self.statusBar().showMessage(f"Snapshot saved: {out / stem}-*", 6000)
        return paths

    def view_image(self, packet: Packet) -> np.ndarray:
        """``(H, W, 3)`` uint8 BGR: the packet's picture with the colour bar drawn as on screen."""
        lut = self.colorbar_shown()
        if lut is None:
            return packet.image
        height, width = packet.image.shape[:2]
        qimage = to_qimage(packet.image)
        painter = QPainter(qimage)
        # the bar's share of the picture as on screen: a 4K picture shown 600 px tall gets a bar
        # (and labels) 3.6 times as large as its on-screen size in pixels, not a tenth of its height
        shown = self.view.target_rect().height() if self.view.image() is not None else height
        scale = max(1.0, height / max(1.0, shown))
        painter.scale(scale, scale)
        on = last_panel(QRectF(0, 0, width / scale, height / scale), panels_of(packet.image.shape, packet.frame.image.shape))
        draw_colorbar(painter, lut, on)
        painter.end()
        return np.ascontiguousarray(image_array(qimage)[:, :, :3])

    def snapshot_settings(self, packet: Packet) -> dict:
        """What made ``packet``'s picture, for the JSON file beside a snapshot."""
        ec, rc, r = self.engine_config, self.render_config, packet.result
        status, weights = self.status, weights_name(ec.model, ec.weights)
        # a factory's or a file's own weights: trained or not, nothing here can know (null, as "In use"
        # says "own weights"); random ones are not
        trained = None if status is None or status.weights_said == "own weights" else bool(status.trained)
        return {
            "model": ec.model, "weights": weights, "trained": trained,
            "layer": status.layer if status else ec.layer, "component": int(r.component), "method": ec.method,
            "short_side": ec.short_side, "smoothing": ec.smoothing,
            # what the network took (a network held to one size takes it whatever the short side)
            "input_size": list(input_size(*packet.frame.image.shape[:2], ec.short_side,
                                          status.fixed_input if status else None))[::-1],
            "device": status.device if status else ec.device, "backend": status.backend if status else ec.backend,
            "precision": status.dtype if status else ec.precision,
            "view": rc.view, "alpha": rc.alpha, "colormap": rc.colormap,
            "source": shown_url(str(self.source_spec)), "frame": packet.frame.index + 1, "frame_index": packet.frame.index,
            "time_s": round(float(packet.seconds), 6),
            **({} if packet.still is None else {"image": packet.still}),
            "frame_size": [int(packet.frame.image.shape[1]), int(packet.frame.image.shape[0])],
            "map_size": [int(r.cam.shape[1]), int(r.cam.shape[0])],
            "explained": [round(float(v), 6) for v in np.asarray(r.explained).ravel()],
            "peak_xy": [int(v) for v in r.peak],
            "predictions": [[label, round(float(p), 6)] for label, p in r.predictions],
            **({} if r.detections is None else {"score": ec.score, "detections": [d.as_dict() for d in r.detections]}),
            "saved": datetime.now().isoformat(timespec="seconds"),
        }

    def toggle_recording(self, folder: str | Path | None = None) -> None:
        if self.recording_path:
            self.pipeline.stop_recording()
            return
        if self.source_info is None or self.last_packet is None:
            self.say_error("nothing to record yet: " + ("no source is open" if self.source_info is None
                                                        else "its first frame has not come (press R again once it shows)"))
            return
        out = Path(folder) if folder else self.snapshot_dir
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.say_error(f"cannot record into {out}: {exc}")
            return
        path = out / (free_name(out, f"eigencam-{datetime.now():%Y%m%d-%H%M%S}", (".mp4",), self.names_given) + ".mp4")
        self.recording_path = str(path)  # optimistic: the worker confirms or reports an error
        self.pipeline.start_recording(path)

    def _on_recording_changed(self, on: bool, path: str) -> None:
        self.recording_path = path if on else None
        self.record_action.setText(shortcut("record").button_text("■ Stop recording" if on else None))
        self.rec_indicator.setVisible(on)
        self._update_badge()
        if not on:
            self._refit_view()  # the layout held while recording follows the window again
        if on:
            self.statusBar().showMessage(f"Recording to {path}", 6000)
        elif path:
            self.statusBar().showMessage(f"Recording saved: {path}", 6000)
        else:
            self.statusBar().showMessage("Recording stopped: no frame was recorded, no file written", 6000)

    def compare(self, count: int = 5) -> None:
        """Pause, then show the frame on screen mapped with each of the first ``count`` components
        in a grid (:class:`CompareGrid`); a click on a tile shows that component live."""
        if self.last_packet is None:
            self.say_error("nothing to compare: no frame is shown yet")
            return
        self._pause_to_compare()
        self.statusBar().showMessage(f"Comparing components 1 to {count}…", 15000)  # cleared when the tiles come
        self._ask_compare(cmd.Compare(count))

    def compare_layers(self, count: int = 5) -> None:
        """Pause, then show the frame on screen mapped with the component in use at the layer in
        use and at up to ``count - 1`` earlier stages of the network (:func:`layers_to_compare`),
        in the same grid, each tile labelled with its layer and its map's shape; a click on a tile
        shows that layer live."""
        if self.last_packet is None:
            self.say_error("nothing to compare: no frame is shown yet")
            return
        current = self.status.layer if self.status is not None else None
        chosen = layers_to_compare(self.layers, current, count, pyramid=self.status.detector) if current else []
        if len(chosen) < 2:
            self.say_error(f"nothing to compare: no earlier stage of {self.engine_config.model} "
                           f"gives a map of another size than {current or 'the layer in use'}")
            return
        self._pause_to_compare()
        self._compare_shapes = {layer.name: layer.shape for layer in chosen}
        self.statusBar().showMessage(f"Comparing PC{self.engine_config.component} across {len(chosen)} layers…", 15000)
        self._ask_compare(cmd.Compare(layers=tuple(layer.name for layer in chosen)))

    def _ask_compare(self, command: cmd.Compare, *, again: bool = False) -> None:
        """Ask the worker for ``command``'s tiles of the frame on screen; ``again``: for the open
        grid (where it has been closed by the time they come, they are dropped)."""
        self._compare_asked = (command, self._compare_key(command), self._compared_frame(), again)
        self._compare_waiting = True
        self.pipeline.send(command)

    def _compare_key(self, command: cmd.Compare) -> tuple:
        """What the tiles of ``command`` depend on: the frame on screen, the model, and the layer in
        use (for the components) or the component (for the layers)."""
        frame = self.last_packet.frame if self.last_packet is not None else None
        status = self.status
        shown = self.engine_config.component if command.layers else (status.layer if status is not None else None)
        model = status and (status.config.model, status.config.weights)
        return (self.source_spec, frame and (frame.index, frame.pts), model, shown)

    def refresh_compare(self) -> None:
        """The open grid's tiles made again for the frame now on screen, where a step, a seek,
        Back, a pause or another source changed it while paused, or another layer or model (the
        components), another component (the layers) (a trial: the tiles stayed the old frame's,
        unlabelled). One request at a time; while playing the tiles stay as they are, their frame
        in the grid's title. The layers of another model are not its own: that grid is closed."""
        grid = getattr(self, "compare_grid", None)
        asked = getattr(self, "_compare_asked", None)
        if grid is None or asked is None or not grid.isVisible() or self._compare_waiting or not self.paused:
            return
        command, key = asked[:2]
        now = self._compare_key(command)
        if now == key:
            return
        if command.layers and now[2] != key[2]:
            grid.close()
            return
        self._ask_compare(command, again=True)

    def _pause_to_compare(self) -> None:
        """Pause for the tiles (they are of the frame on screen); what was playing plays on when
        they are closed (a live demo stayed frozen after a look at the components)."""
        if not self.paused:
            self.set_paused(True)
            self._resume_after_compare = True

    def _on_compare_closed(self) -> None:
        if self._resume_after_compare and self.paused and not self._closed:
            self.set_paused(False)
        self._resume_after_compare = False

    def _on_compare(self, tiles: list) -> None:
        self._compare_waiting = False
        if self._closed:
            return
        if not tiles:  # the worker said why
            self.statusBar().clearMessage()
            return
        asked = getattr(self, "_compare_asked", None)
        frame, again = asked[2:] if asked is not None else (self._compared_frame(), False)
        if again and not self.compare_grid.isVisible():
            return  # closed while they were made (a review: the grid came back)
        if getattr(self, "compare_grid", None) is None:
            self.compare_grid = CompareGrid(self)
            self.compare_grid.chosen.connect(self._on_compare_chosen)
            self.compare_grid.closed.connect(self._on_compare_closed)
            self.compare_grid.resize(960, 420)
        if isinstance(tiles[0][0], str):  # across layers: the same component, each layer's shape
            k = self.engine_config.component
            shapes = {**self._compare_shapes, **{layer.name: layer.shape for layer in self.layers}}  # (this input's)
            captions = [f"{name}\n{'×'.join(str(d) for d in shapes.get(name, ())) or '?'}  ·  PC{k} {ev * 100:.1f} %"
                        for name, _, ev in tiles]
            current = self.status.layer if self.status is not None else tiles[-1][0]
            self.compare_grid.set_tiles(tiles, current, captions, frame=frame)
        else:
            self.compare_grid.set_tiles(tiles, self.engine_config.component, frame=frame)
        was_open = self.compare_grid.isVisible()
        self.compare_grid.show()
        if not was_open:
            self.compare_grid.raise_()  # (made again for a step: the keys stay with the main window)
        self.statusBar().clearMessage()
        self.refresh_compare()  # the frame moved on while these were made

    def _compared_frame(self) -> str:
        packet = self.last_packet
        if packet is None:
            return ""
        return f"frame {packet.frame.index + 1}" + (f" ({packet.still})" if packet.still else "")

    def _on_compare_chosen(self, key: int | str) -> None:
        """A tile clicked: its component (a spin box change), or its layer, live."""
        if isinstance(key, str):
            self._select_layer(key)
            self._engine(layer=key)
        else:
            self.component_spin.setValue(key)
        self.compare_grid.current = key
        self.compare_grid.update()



class CompareGrid(QWidget):
    """Tiles of one frame mapped several ways, each with its explained variance: with each of the
    first components (keys 1, 2, ...), or with the component in use at several layers (keys: the
    layers' names); a click on a tile chooses it.

    Signals:
        chosen(object): the clicked tile's key: a 1-based component (int) or a layer name (str).
        closed(): the grid was closed (Esc, its window's close button).
    """

    chosen = pyqtSignal(object)
    closed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.Tool)
        self.setWindowTitle("Compare components")
        self.tiles: list[tuple[int | str, np.ndarray, float]] = []
        self.captions: list[str] = []
        self._images: list[QImage] = []
        self.current: int | str = 0
        self.setMinimumSize(480, 300)
        self.setCursor(Qt.PointingHandCursor)
        self.setToolTip("Click a tile to show its component live")

    @property
    def mode(self) -> str:
        """``"layers"`` when the tiles are layers, else ``"components"``."""
        return "layers" if self.tiles and isinstance(self.tiles[0][0], str) else "components"

    def set_tiles(self, tiles: list[tuple[int | str, np.ndarray, float]], current: int | str,
                  captions: list[str] | None = None, frame: str = "") -> None:
        """``[(component or layer name, (H, W, 3) uint8 BGR picture, explained variance in [0, 1]),
        ...]``; ``captions``: one text per tile (line breaks allowed), by default ``PCk · v %``;
        ``frame``: which frame they map, for the title."""
        self.tiles = [(k if isinstance(k, str) else int(k), np.ascontiguousarray(img), float(ev))
                      for k, img, ev in tiles]
        self._images = [to_qimage(img) for _, img, _ in self.tiles]
        if captions is None:
            captions = [f"PC{k}  ·  {ev * 100:.1f} %" for k, _, ev in self.tiles]
        if len(captions) != len(self.tiles):
            raise ValueError(f"captions must have one text per tile ({len(self.tiles)}). Got {len(captions)}")
        self.captions = list(captions)
        self.current = current if isinstance(current, str) else int(current)
        layers = self.mode == "layers"
        self.setWindowTitle(("Compare layers" if layers else "Compare components") + (f"  ·  {frame}" if frame else ""))
        self.setToolTip(f"Click a tile to show its {'layer' if layers else 'component'} live")
        self.update()

    def _caption_height(self) -> int:
        lines = max((c.count("\n") + 1 for c in self.captions), default=1)
        return lines * (self.fontMetrics().height() + 2) + 2

    def grid(self) -> tuple[int, int]:
        """``(columns, rows)``: the layout whose tiles come out largest."""
        n = max(1, len(self.tiles))
        if not self._images:
            return n, 1
        aspect = self._images[0].width() / max(1, self._images[0].height())
        best, shape = -1.0, (n, 1)
        for cols in range(1, n + 1):
            rows = -(-n // cols)
            w, h = self.width() / cols, (self.height() / rows) - self._caption_height()
            scale = min(w / aspect, h) if h > 0 else 0
            if scale > best:
                best, shape = scale, (cols, rows)
        return shape

    def tile_rect(self, i: int) -> QRectF:
        cols, rows = self.grid()
        w, h = self.width() / cols, self.height() / rows
        return QRectF((i % cols) * w, (i // cols) * h, w, h)

    def tile_at(self, x: float, y: float) -> int | str | None:
        """The key (component or layer) of the tile under ``(x, y)``, ``None`` between tiles."""
        for i, (k, _, _) in enumerate(self.tiles):
            if self.tile_rect(i).contains(x, y):
                return k
        return None

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.closed.emit()  # (not on hiding: a tool window hides with its minimised main window)
        super().closeEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if event.key() == Qt.Key_Escape:
            self.close()
        else:
            super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        k = self.tile_at(event.pos().x(), event.pos().y())
        if k is not None and event.button() == Qt.LeftButton:
            self.chosen.emit(k)
        super().mousePressEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 25, 28))
        p.setRenderHint(QPainter.SmoothPixmapTransform, True)
        below = self._caption_height()
        metrics = p.fontMetrics()
        for i, ((k, _, _), image, text) in enumerate(zip(self.tiles, self._images, self.captions, strict=True)):
            cell = self.tile_rect(i).adjusted(4, 4, -4, -4)
            scale = max(0.0, min(cell.width() / image.width(), (cell.height() - below) / image.height()))
            w, h = image.width() * scale, image.height() * scale
            # the picture and its caption as one block, centred in the cell
            target = QRectF(cell.x() + (cell.width() - w) / 2, cell.y() + (cell.height() - h - below) / 2, w, h)
            caption = QRectF(cell.x(), target.bottom() + 2, cell.width(), below - 2)
            p.drawImage(target, image)
            if k == self.current:
                p.setPen(QPen(QColor(255, 170, 40), 3))
                p.drawRect(target)
            p.setPen(QColor(235, 235, 240))
            # a long layer name keeps its end (the block it names), elided at the front
            lines = [elide_name(metrics, line, int(caption.width()), compact=True) for line in text.split("\n")]
            p.drawText(caption, Qt.AlignHCenter | Qt.AlignTop, "\n".join(lines))
        p.end()
