"""The compare tiles of the frame on screen (no Qt here): the frame mapped with each of the first
components, or with the component in use at several layers. Each tile is the frame's own
decomposition (the video state is reset before each), and the engine's settings are put back."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from eigencam_live.engine import Engine
from eigencam_live.errors import EigenCamError
from eigencam_live.models import model_kind
from eigencam_live.render import TWO_PANEL_VIEWS, RenderConfig

__all__ = ["component_tiles", "layer_tiles", "tile_look"]


def tile_look(look: RenderConfig) -> RenderConfig:
    """How tiles are drawn: as the view, but the overlay alone in place of frame and overlay (the
    frame, the same in every tile, would take half of each)."""
    return replace(look, view="overlay") if look.view in TWO_PANEL_VIEWS else look


def component_tiles(engine: Engine, image: np.ndarray, look: RenderConfig, count: int) -> list[tuple]:
    """``[(component, picture, explained), ...]`` for components 1 to ``count`` (fewer where the
    layer's rank ends); the component in use stays."""
    keep = engine.config.component
    tiles = []
    try:
        for k in range(1, count + 1):
            try:
                engine.reconfigure(component=k)
            except EigenCamError:
                break  # beyond the layer's rank
            engine.reset()  # each tile from this frame alone, none from the state of earlier ones
            result = engine.process(image, render=tile_look(look))[0]
            tiles.append((k, result.picture, float(result.explained_component)))
    finally:
        engine.reconfigure(component=keep)
        engine.reset()
    return tiles


def layer_tiles(engine: Engine, image: np.ndarray, look: RenderConfig,
                layers: tuple[str, ...]) -> tuple[list[tuple], list[str]]:
    """``([(layer name, picture, explained), ...], refused)``: the component in use at each layer,
    and why each layer that cannot give it was left out; the layer in use stays.

    A network ONNX Runtime runs from an export is run by an engine of torch's for the tiles, the
    same network: an export is made per layer (seconds each, 1.2 GB for a ViT-L), and going back
    to ONNX Runtime would prepare its session again (the maps agree at r >= 0.999)."""
    if engine.backend.name == "onnxruntime" and model_kind(engine.config.model) != "onnx":
        # (the loaded network carries the labels and normalisation already: not read again)
        tiler = Engine(replace(engine.config, backend="torch", optimize=False, labels=None, mean=None, std=None),
                       model=engine.loaded)
        tiler.threads = engine.threads
    else:
        tiler = engine
    keep = {"layer": engine.config.layer, "optimize": engine.config.optimize}
    tiles, refused = [], []
    try:
        for name in layers:
            try:  # other layers eager: a traced copy per layer would cost more than the tile
                tiler.reconfigure(layer=name, optimize=keep["optimize"] and name == engine.layer and tiler is engine)
            except EigenCamError as exc:
                refused.append(f"{name}: {exc}")
                continue
            tiler.reset()
            result = tiler.process(image, render=tile_look(look))[0]
            tiles.append((name, result.picture, float(result.explained_component)))
    finally:
        if tiler is engine:
            engine.reconfigure(**keep)
        # the view is redrawn from this frame alone too, as its tile is (the engine of torch's drew the
        # tiles for ONNX Runtime's: a state kept from earlier frames, the map's sign among them, drew
        # the view unlike its tile, now and then the other way up)
        engine.reset()
    return tiles, refused
