"""What an ONNX file's first operations say about the image it takes, where its declared input does
not: the layout (a ``Transpose`` to channels-first right after the input: channels-last pixels)
and the range of a float input that the graph normalises itself (a Keras ``Rescaling`` or
``Normalization`` layer exported through tf2onnx: its first ``Mul``/``Div``/``Sub``/``Add`` by
constants), so that it is not normalised a second time."""

from __future__ import annotations

import numpy as np

__all__ = ["PIXEL_RANGES", "first_transpose", "pixel_range"]

#: The input ranges a graph that normalises itself is told apart by: pixels in [0, 1], or 0 to 255.
PIXEL_RANGES = (1, 255)
#: The span of a normalised input, about: [0, 1] is 1, [-1, 1] 2, ImageNet's mean and std 4.4.
_NORMALISED_SPAN = 2.5
#: Operations that keep each value's place and size (followed through to the first affine one).
_PASSING = ("Cast", "Identity", "Transpose")


def first_transpose(model, name: str) -> list[int] | None:
    """The ``perm`` of a ``Transpose`` that is the only reader of input ``name`` (after a ``Cast``:
    uint8 pixels made float first), else ``None``."""
    for _ in range(2):
        readers = [node for node in model.graph.node if name in node.input]
        if len(readers) != 1:
            return None
        if readers[0].op_type == "Transpose":
            return [int(p) for a in readers[0].attribute if a.name == "perm" for p in a.ints] or None
        if readers[0].op_type != "Cast" or len(readers[0].output) != 1:
            return None
        name = readers[0].output[0]
    return None


def pixel_range(model, name: str) -> int | None:
    """For a float input ``name`` that the graph scales and shifts by constants before anything else
    (``y = a x + b``, per channel): the range of pixels that makes ``y`` a normalised input, 1
    (pixels in [0, 1]) or 255, else ``None`` (the graph does not normalise its input, or wants
    another range: the caller's normalisation applies). Of the two, one whose output stays within
    its span of 0 (pixels 0 to 255 less a mean of 117 do; pixels in [0, 1] less it do not), the
    one that spans nearest what a normalised input does (``_NORMALISED_SPAN``)."""
    affine = _leading_affine(model, name)
    if affine is None:
        return None
    a, b = np.broadcast_arrays(*affine)
    if np.allclose(a, 1, rtol=0.05) and np.all(np.abs(b) < 0.05):
        return None  # (x + 1e-6, x * 1.0, a folded batch norm that does next to nothing: a review)
    fits = []
    for top in PIXEL_RANGES:
        span = float(np.median(np.abs(a))) * top
        centre = float(np.median(np.abs(b + a * top / 2)))
        far = abs(np.log10(span / _NORMALISED_SPAN)) if span > 0 else np.inf
        # a normalised input's span, or one centred on 0 (a mean taken off 0-255 pixels, Caffe's),
        # or pixels 0 to 255 made of [0, 1] ones (x * 255); not 0.5 x + 0.5 (it wants [-1, 1])
        if centre <= span and (far <= 1.2 or centre <= 0.25 * span or 128 <= span <= 512):
            fits.append((far, top))
    return min(fits)[1] if fits else None


def _leading_affine(model, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(a, b)`` of the constant scales and shifts the graph applies to input ``name`` before any
    other operation (each a broadcastable array), or ``None`` where there are none."""
    from onnx import numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    made = {node.output[0]: node for node in graph.node if node.op_type == "Constant" and node.output}

    def constant(value: str) -> np.ndarray | None:
        try:
            if value in constants:
                tensor = constants[value]
                if tensor.data_location == tensor.EXTERNAL:
                    return None  # (not loaded: a normalisation's few numbers are never stored so)
                return numpy_helper.to_array(tensor).astype(np.float64)
            if value in made:
                for a in made[value].attribute:
                    if a.name == "value":
                        return numpy_helper.to_array(a.t).astype(np.float64)
                    if a.name in ("value_float", "value_floats"):  # (the other ways a Constant holds them)
                        return np.asarray(a.f if a.name == "value_float" else list(a.floats), np.float64)
                return None
        except (ValueError, TypeError):
            return None
        return None

    a, b, changed, current = np.ones(1), np.zeros(1), False, name
    for _ in range(16):  # (a chain of a few operations; a graph is never walked whole)
        readers = [node for node in graph.node if current in node.input]
        if len(readers) != 1 or len(readers[0].output) != 1:
            break
        node = readers[0]
        if node.op_type in _PASSING:
            current = node.output[0]
            continue
        if node.op_type not in ("Mul", "Div", "Add", "Sub") or len(node.input) != 2:
            break
        first = node.input[0] == current
        c = constant(node.input[1] if first else node.input[0])
        if c is None or not np.all(np.isfinite(c)) or (node.op_type == "Div" and (not first or np.any(c == 0))):
            break
        if c.size not in (1, 3):  # one number, or one per channel (a mean image is not followed: a review)
            break
        c = c.ravel()  # (per channel, in either layout: only its values count here)
        if node.op_type == "Mul":
            a, b = a * c, b * c
        elif node.op_type == "Div":
            a, b = a / c, b / c
        elif node.op_type == "Add":
            b = b + c
        elif first:  # x - c
            b = b - c
        else:  # c - x
            a, b = -a, c - b
        changed, current = True, node.output[0]
    return (a, b) if changed else None
