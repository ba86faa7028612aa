"""The worker loop's engine settings: a mixin of :class:`~ui.frame_loop.FrameLoop` (no Qt here).

A new setting applied (or refused, changing nothing), what is in use announced to the window, a
component beyond a frame's rank given way, and what a network held to one size does to the frames
said; the loop's ``engine``, ``playback``, ``out``, ``_required`` and rates are the loop's own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from eigencam_live.config import stretch_note
from eigencam_live.errors import ConfigError, EigenCamError

from . import commands as cmd
from .engine_status import EngineStatus, layer_list

if TYPE_CHECKING:
    from eigencam_live.engine import Engine
    from eigencam_live.video import Frame

__all__ = ["WORK", "LoopSettings"]

#: Settings that change the work each frame takes: the rates (and latencies) start over with them.
WORK = frozenset({"model", "weights", "short_side", "device", "backend", "precision", "layer", "method"})


class LoopSettings:
    """Engine settings, as methods of :class:`~ui.frame_loop.FrameLoop`."""

    def _announce_engine(self) -> None:
        e = self.engine
        assert e is not None
        if self.stop_event.is_set():  # the window has closed: nothing to tell it (and no layers to list)
            return
        self.out.engine_changed.emit(EngineStatus.of(e))
        if e.loaded.note and e.loaded.note != self._noted:
            self.out.warning.emit(e.loaded.note)
        self._noted = e.loaded.note
        self._backend_running = e.backend.running
        # for the frame on screen, else the source's frames before the first has been through (a folder
        # of 16:9 photos was listed at 7x7, then at 7x12 a few seconds later; a trial)
        info, last = self.playback.info, self.shown.last
        hw = (last.image.shape[:2] if last is not None
              else (info.height, info.width) if info is not None and info.width and info.height else None)
        self._layers_size = e.input_size(hw)
        layers = layer_list(e, self._layers_cache, self.out.error.emit, hw)
        if self.stop_event.is_set():  # closed while the layers were listed (seconds under load): CI
            return  # segfaulted four times in this emission, each time during a window's close
        self.out.layers_ready.emit(e.config.model, layers)

    def _reconfigure(self, command: cmd.Reconfigure) -> None:
        changes = command.changes
        if self.engine is None:
            self._engine_config = replace(self._engine_config, **changes)
            if "model" in changes or "weights" in changes:  # none could be built: this one, maybe (a review)
                self._build_engine()
            return
        slow = "model" in changes or "weights" in changes
        dropped_before = self.playback.dropped
        if WORK.intersection(changes):
            self._clear_rates()  # the old setting's rates are not the new one's (a model, an input size)
        if slow:
            self.out.busy.emit(f"loading {changes.get('model', self.engine.config.model)}…")
        try:
            # The engine refuses, changing nothing, a layer or component the model's shapes cannot
            # give a map for: no trial frame here.
            try:
                self.engine.reconfigure(**changes)
            except ConfigError as exc:
                if exc.field != "component" or "component" in changes:
                    raise
                # the component in use is beyond the rank of the new model's, layer's or size's map:
                # it gives way, said (a trial: the model or size asked for was refused for it)
                self.engine.reconfigure(**changes, component=1)
                self.out.warning.emit(f"{exc}: component 1 is shown instead")
            if slow:
                # the window takes what was said of the model away while one loads: said again of
                # the one that runs after it, where it holds (the same model reloaded, A -> B -> A:
                # a review); not after a load that failed, whose error it would cover (a review)
                self._noted = None
                self._stretch_said.clear()
                self._loaded = True
        except EigenCamError as exc:
            if slow:
                kept = f"still {self.engine.config.model}"
            else:
                kept = f"back to layer {self.engine.layer}" if "layer" in changes else "setting not applied"
            self.out.setting_failed.emit(f"{str(exc).rstrip('.')}; {kept}")
            if slow:  # the picture on screen was veiled for a model that did not come: drawn again, paused too
                self._redraw = True
            return
        finally:
            if slow:
                self.out.busy.emit("")
                # what a live source delivered while the model loaded was not the model's to keep up with
                self._dropped_offset += max(0, self.playback.dropped - dropped_before)
            self._announce_engine()  # the window syncs its controls to what is really in use
        self.out.setting_applied.emit()
        self._redrawn()

    def _beyond_rank(self, engine: Engine, exc: ConfigError) -> bool:
        """The component in use is beyond the rank of this frame's map (known on a frame only: the
        rank depends on the frame's aspect). The command line's closes the window to say so; any
        other (remembered, or a new source's smaller map) gives way to component 1, said. A trial:
        a remembered or typed --component 90 on a 7x12 map showed no frame at all, "Preparing" for
        good. Returns whether the frame is to be drawn again."""
        if "component" in self._required:
            self.out.fatal.emit(str(exc))
            self.stop_event.set()
            return False
        if engine.config.component == 1:
            return False
        engine.reconfigure(component=1)
        self.out.engine_changed.emit(EngineStatus.of(engine))
        self.out.warning.emit(f"{exc}: component 1 is shown instead")
        return True

    def _say_stretch(self, engine: Engine, frame: Frame) -> None:
        """A network held to one size: its stretch of this frame size said once (where its own
        note, "runs at 224x224 only: frames are resized to it", has not said it)."""
        if engine.loaded.spec.fixed_input and not engine.loaded.note and (
                held := (engine.config.model, frame.image.shape[:2])) not in self._stretch_said:
            self._stretch_said.add(held)
            if note := stretch_note(engine.loaded.spec.name, engine.loaded.spec.fixed_input, *frame.image.shape[:2]):
                self.out.warning.emit(note)
