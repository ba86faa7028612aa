"""ONNX files as models: a network trained in any framework and exported to ONNX, inspected as is.

The file's graph is read with the ``onnx`` package; its layers are the outputs of its nodes that read
as a feature map (rank 4, ``(B, C, h, w)``, with at least 2 x 2 positions; or tokens). To run one,
the graph is edited to return that tensor as an extra output beside the first graph output (the
logits), and ONNX Runtime runs the edited graph on the CPU. Shapes come from the network itself: one
run of a blank image with every node output exposed (:meth:`OnnxFile.layers`).

The file holds no labels: class indices unless ``EngineConfig.labels`` names them. Its input is
normalised with ImageNet's mean and std (for a grey input, one channel, their average) unless
``EngineConfig.mean`` / ``std`` say otherwise, or the graph normalises it itself: pixels 0 to 255
for a uint8 input; for a float one whose first operations scale and shift it by constants, the
range they make a normalised input of, [0, 1] or 0 to 255 (:mod:`.onnx_input`).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import torch

from eigencam_live.errors import LayerNotFoundError, ModelError, NetworkError, network_errors
from eigencam_live.models import Layer, LoadedModel, ModelSpec, to_feature_map
from eigencam_live.models.layers import LEVEL_STRIDE
from eigencam_live.models.loaded import normalisation
from eigencam_live.results import SQUASHES, batched_scores, class_scores, reads_as_scores, score_output

from .onnx_input import first_transpose, pixel_range

__all__ = ["OnnxFile", "OnnxFileBackend", "load_onnx", "short_name"]


def short_name(name: str) -> str:
    """A graph node's output as far as it tells layers apart, as the app shows it: torch's exporter
    names each module before its index and ends every name in ``_output_0``, so
    ``/features/features.12/block/block.3/HardSwish_output_0`` -> ``features.12/block.3/HardSwish``.
    A name without ``/`` (a module's) is returned as it is. ``layer=`` takes either."""
    if "/" not in name:
        return name
    parts = [p for p in name.split("/") if p]
    kept = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    if kept and kept[-1].endswith("_output_0") and len(kept[-1]) > len("_output_0"):
        kept[-1] = kept[-1][: -len("_output_0")]
    return "/".join(kept) or name


class OnnxFile:
    """An ONNX classifier or backbone: one image input, ``(B, 3, H, W)`` (``(B, 1, H, W)`` grey) or
    channels-last ``(B, H, W, 3)`` (TensorFlow's, through tf2onnx), float32, float16 or uint8
    (pixels 0 to 255, the normalisation inside the graph); class scores as one of its outputs (the
    first ``(B, K)`` one named as such, logits, scores, probabilities, else the first), or none (a
    backbone: maps alone).

    Raises:
        ModelError: a missing or unreadable file, or a graph without one image input.
    """

    def __init__(self, path: str | Path) -> None:
        import onnx

        self.threads: int | None = None  # ONNX Runtime's intra-op threads (see runtime_options)
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise ModelError(f"{self.path} is a folder, not an ONNX file")
        if not self.path.is_file():
            raise ModelError(f"ONNX file not found: {self.path}")
        if self.path.stat().st_size == 0:
            raise ModelError(f"{self.path} is empty (0 bytes), not an ONNX file")
        try:
            # the graph alone: weights in external files (over 2 GB) stay there, read by the runtime
            self.model = onnx.load(str(self.path), load_external_data=False)
        except Exception as exc:
            raise ModelError(f"cannot read ONNX file {self.path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
        graph = self.model.graph
        weights = {i.name for i in graph.initializer}
        inputs = [i for i in graph.input if i.name not in weights]
        # an input whose shape is not declared at all (ONNX Runtime runs it all the same): an RGB image
        # of any size, channels first, as most exporters write it
        dims = [[d.dim_value or None for d in i.type.tensor_type.shape.dim] if i.type.tensor_type.HasField("shape")
                else [None, None, None, None] for i in inputs]
        got = ", ".join(f"{i.name} {d}" for i, d in zip(inputs, dims, strict=True)) or "none"
        if len(inputs) != 1 or len(dims[0]) != 4 or not graph.output:
            raise ModelError(f"{self.path.name}: expected one image input, (B, 3, H, W), (B, H, W, 3) or one channel "
                             f"for grey. Got inputs: {got}")
        b, d1, d2, d3 = dims[0]
        if d1 is None and d3 in (None, 3) and first_transpose(self.model, inputs[0].name) == [0, 3, 1, 2]:
            d1, d3 = None, 3  # its layout not declared, but its first operation puts the channels first (tf2onnx)
        #: the input's layout: channels first, or channels last (TensorFlow's)
        self.channels_last = d1 not in (1, 3) and d3 in (1, 3)
        #: 3 (RGB) or 1 (grey: fed the frames' luma)
        self.channels = (d3 if self.channels_last else d1) or 3
        if not self.channels_last and (d1 not in (1, 3, None) or d3 == 4):
            many = 4 if 4 in (d1, d3) else d1
            raise ModelError(f"{self.path.name}: its input {inputs[0].name} {dims[0]} takes {many} channels"
                             f"{' (RGBA?)' if many == 4 else ''}; eigencam-live feeds 3 (RGB) or 1 (grey), first or "
                             "last: export it so")
        kind = inputs[0].type.tensor_type.elem_type
        self.dtype = _INPUT_TYPES.get(kind)
        if self.dtype is None:
            raise ModelError(f"{self.path.name}: its input {inputs[0].name} is {onnx.helper.tensor_dtype_to_np_dtype(kind)}; "
                             "eigencam-live feeds float32, float16 or uint8 images: export it so")
        self.input = inputs[0].name
        #: a float input's range where the graph normalises it itself (its first operations scale and
        #: shift it by constants: a Keras Rescaling layer's), 1 or 255, else ``None``
        self.pixels = pixel_range(self.model, self.input) if self.dtype != np.uint8 else None
        self.outputs = [o.name for o in graph.output]
        #: the class scores' output: the first ``(B, K)`` one once :meth:`layers` has run, ``None``
        #: where there is none
        self.output: str | None = graph.output[0].name
        h, w = (d1, d2) if self.channels_last else (d2, d3)
        self.fixed_input = (h, w) if h and w else None
        #: said once loaded: one side fixed, the other free (fed square, at the fixed side)
        self.note: str | None = None
        if bool(h) != bool(w):
            self.fixed_input = (h or w, h or w)
            self.note = (f"{self.path.name} fixes its input's {'height' if h else 'width'} at {h or w} and leaves the "
                         f"other free: each frame is resized to {h or w}x{h or w}")
        #: the batch size the graph was exported for (``torch.onnx.export``'s default: 1), or ``None``
        self.fixed_batch: int | None = b
        self.classes: int | None = None  # the width of its scores, once :meth:`layers` has run
        #: a detector's per-box outputs (boxes, their scores and labels), named, once :meth:`layers`
        #: has run; ``None`` where there are none
        self.detector: str | None = None
        self.order = [o for node in graph.node for o in node.output if o]  # topological: ONNX requires it
        #: the op type that makes each node output (``Conv``, ``Relu``, ...)
        self.kinds = {o: node.op_type for node in graph.node for o in node.output if o}
        self._inputs = {o: list(node.input) for node in graph.node for o in node.output if o}
        self._concat_axes = {node.output[0]: next((a.i for a in node.attribute if a.name == "axis"), 0)
                             for node in graph.node if node.op_type == "Concat" and node.output}
        #: outputs pooled over the positions whatever the input's size: a global pool's, and what is
        #: computed from those alone (a squeeze-excitation's 1x1 convolutions and gate): never maps
        self._pooled: set[str] = set()
        for o in self.order:
            fed = [i for i in self._inputs[o] if i in self.kinds and self.kinds[i] != "Constant"]
            if self.kinds[o] in _POOLED or (fed and all(i in self._pooled for i in fed)):
                self._pooled.add(o)
        self._layers: dict[tuple[int, int], dict[str, tuple[int, ...]]] = {}
        self._shapes: dict[tuple[int, int], dict[str, tuple[int, ...]]] = {}
        self._tiny: dict[tuple[int, int], dict[str, tuple[int, int, int]]] = {}  # maps under 2x2 positions
        self._lock = threading.Lock()

    def feed(self, x: np.ndarray) -> np.ndarray:
        """The engine's ``(B, C, H, W)`` float32 input as this graph takes it: channels last where
        it wants them, cast to its type (uint8: the normalisation is then 0 and 1/255, pixels)."""
        if self.channels_last:
            x = x.transpose(0, 2, 3, 1)
        if self.dtype == np.uint8:
            x = np.clip(np.rint(x), 0, 255)
        return np.ascontiguousarray(x, dtype=self.dtype)

    def layers(self, size: tuple[int, int]) -> dict[str, tuple[int, int, int]]:
        """Node outputs that read as feature maps for a ``size = (h, w)`` input: ``{name: (C, h', w')}``,
        in graph order. One run with every node output exposed, cached by size. The class scores
        are found on the way (:attr:`output`)."""
        if size not in self._layers:
            session = self._session(self.order, scores=False)
            n = self.fixed_batch or 1
            x = self.feed(np.zeros((n, self.channels, *size), np.float32))
            found, shapes, tiny = {}, {}, {}
            with network_errors(f"{self.path.name} failed on a {size[1]}x{size[0]} input"):
                values = session.run(None, {self.input: x})
            outputs = dict(zip((meta.name for meta in session.get_outputs()), values, strict=True))
            # an embedding may come before the logits (TensorFlow's exports): a scores' name wins, and
            # else an output that other scores are computed from by a layer is not them (an embedding
            # before its logits; not logits before their softmax or their top-k values)
            pairs = [(o, _batched(outputs.get(o), n)) for o in self.outputs]
            boxes = _box_outputs({o: outputs.get(o) for o in self.outputs}, n)
            if boxes:  # a detector's per-box outputs: its boxes' scores are no class scores (a trial: top-1 "198")
                self.detector = ", ".join(boxes)
                pairs = [(o, None if o in boxes else v) for o, v in pairs]
            shaped = {o for o, v in pairs if reads_as_scores(v)}
            feeding = {o for o in shaped for p in shaped if p != o and self._layer_between(o, p)}
            at = score_output(pairs, by_name=True)
            if at is None:
                at = score_output([(o, None if o in feeding else v) for o, v in pairs])
            self.output = None if at is None else self.outputs[at]
            self.classes = None if at is None else int(class_scores(_batched(outputs[self.output], n)).shape[1])
            for name, value in outputs.items():
                if name == self.output or not isinstance(value, np.ndarray) or value.ndim == 0 or len(value) != n:
                    continue  # (the graph's output itself may be the map: a backbone without a head)
                shapes[name] = value.shape
                if self.kinds.get(name) in _NOT_MAPS or self._attention(name, shapes):
                    continue  # attention scores and weights (B, heads, N, N): no picture
                try:
                    fmap = to_feature_map(torch.from_numpy(np.ascontiguousarray(value[:1])), size, batch=1)
                except LayerNotFoundError:
                    continue
                if fmap.shape[0] == 1 and fmap.shape[2] * fmap.shape[3] >= 4:
                    found[name] = tuple(int(d) for d in fmap.shape[1:])
                elif fmap.shape[0] == 1 and name not in self._pooled:  # a larger input would make it a map
                    tiny[name] = tuple(int(d) for d in fmap.shape[1:])
            self._layers[size] = {name: found[name] for name in self.order if name in found}  # in graph order
            self._shapes[size], self._tiny[size] = shapes, tiny
        return self._layers[size]

    def small_maps(self, size: tuple[int, int]) -> dict[str, tuple[int, int, int]]:
        """Node outputs that read as feature maps of fewer than 2x2 positions at this size (a
        network's last stage on a small input): ``{name: (C, h', w')}``."""
        self.layers(size)
        return self._tiny[size]

    def shapes(self, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
        """The shape of every node output (but the scores) for a ``size`` input, maps or not."""
        self.layers(size)
        return self._shapes[size]

    def _attention(self, name: str, shapes: dict[str, tuple[int, ...]]) -> bool:
        """Whether ``name`` holds a transformer's attention scores, ``(B, heads, N, N)`` from a
        product of queries and keys (or scaled, masked, shifted after it): N x N positions against
        positions, not a picture."""
        shape = shapes[name]
        if len(shape) != 4 or shape[-1] != shape[-2] or shape[1] >= shape[-1]:
            return False
        if self.kinds.get(name) in ("MatMul", "Einsum"):
            return True
        return self.kinds.get(name) in _ELEMENTWISE and any(
            shapes.get(i) == shape and self._attention(i, shapes) for i in self._inputs.get(name, []) if i in shapes)

    def default_layer(self, size: tuple[int, int]) -> str:
        """The last feature map the class scores are computed from (before global pooling, for a
        CNN; not another head's: boxes read as tokens); without scores, the last one of the output
        computed from the most of the graph (a segmentation's ``out``, not its auxiliary head's; a
        feature pyramid's deepest level, not its first, finest one); the graph's last one where no
        map feeds them (none that the graph says: inside a subgraph)."""
        layers = self.layers(size)
        maps = [n for n, shape in layers.items() if len(shape) == 3]
        if self.output:
            feeding = self._ancestors(self.output)
        else:
            feeding = max(({o} | self._ancestors(o) for o in self.outputs), key=len)
        maps = [n for n in maps if n in feeding] or maps
        if not maps:
            raise ModelError(f"{self.path.name} has no layer with a spatial feature map")
        return self._head_input(size, feeding) or maps[-1]

    def _head_input(self, size: tuple[int, int], feeding: set[str]) -> str | None:
        """A detection head's input, where the output joins the positions of several grids (YOLO's
        ``(1, 84, 8400)``: its heads' predictions on strides 8, 16 and 32, each flattened; SSD's on
        six): the map the head of the level nearest stride 32 reads (YOLO's neck at stride 32, where
        its Eigen-CAM is usually taken; the grid a torch detector's levels are stacked on), not that
        head's raw predictions, which the last map before the output was (a trial), nor SSD's last,
        2x2 map. Only in a graph without class scores, and where the join is of positions: each part
        as long as its level's cells, or a multiple (anchors), not of pooled features (a classifier's
        scales, a review). ``None`` where no output joins such levels."""
        if self.output is not None:
            return None
        layers, shapes = self.layers(size), self.shapes(size)
        place = {name: i for i, name in enumerate(self.order)}

        def level(name: str) -> str | None:  # the map a head's flattened output comes from
            return name if name in layers else max((i for i in self._ancestors(name, values=True) if i in layers),
                                                    key=place.__getitem__, default=None)

        wanted, heads = feeding | set(self.outputs), []  # each join's level nearest stride 32 (boxes', classes')
        for joined in self.order:
            if (self.kinds[joined] != "Concat" or joined not in wanted
                    or len(shapes.get(joined, ())) == 4):  # (channels of one grid: an Inception block's, a U-Net's)
                continue
            axis = self._concat_axes.get(joined, 0)
            levels = set()
            for part in self._inputs[joined]:
                lv, shape = level(part), shapes.get(part, ())
                if part in self.kinds and part not in self._pooled and lv is not None and shape and -len(shape) <= axis < len(shape):
                    cells = layers[lv][1] * layers[lv][2]
                    if shape[axis] > 0 and shape[axis] % cells == 0:  # the positions of its level's grid
                        levels.add(lv)
            if len({layers[lv][1:] for lv in levels}) >= 2:
                heads.append(min(levels, key=lambda lv: abs(math.log(size[0] / layers[lv][1] / LEVEL_STRIDE))))
        grid = min((layers[h][1:] for h in heads), key=lambda g: abs(math.log(size[0] / g[0] / LEVEL_STRIDE)), default=None)
        heads = [h for h in heads if layers[h][1:] == grid]
        if not heads:
            return None
        before = set.intersection(*(self._ancestors(h, values=True) for h in heads))
        ahead = [m for m in layers if m in before and layers[m][1:] == grid
                 and all(self._dominates(m, h) and self._learned_between(m, h) for h in heads)]
        return ahead[-1] if ahead else None

    def _dominates(self, early: str, late: str) -> bool:
        """Whether every path of values from the graph's input to ``late`` passes through ``early``."""
        return not self._reaches(late, self.input, lambda n: n == early or self.kinds.get(n) in _SHAPE_ONLY)

    def _learned_between(self, early: str, late: str) -> bool:
        """Whether every path from ``early`` to ``late`` passes through a learned layer (``late``'s
        own node included)."""
        return not self._reaches(late, early, lambda n: self.kinds.get(n) in _LAYERS)

    def _reaches(self, late: str, target: str, wall) -> bool:
        """Whether ``late`` is computed from ``target`` by a path that passes no node ``wall`` says
        is one (walked back from ``late``; a wall's own inputs are not followed)."""
        seen, todo = set(), [late]
        while todo:
            at = todo.pop()
            if wall(at):
                continue
            for i in self._inputs.get(at, []):
                if i == target:
                    return True
                if i not in seen:
                    seen.add(i)
                    todo.append(i)
        return False

    def squashed(self) -> str | None:
        """``"sigmoid"`` or ``"softmax"`` where the class scores (:attr:`output`) come out of that
        node, only reshaped after it; else ``None`` (logits). As
        :func:`~eigencam_live.results.squashed_by` reads a torch network's."""
        at = self.output
        while at is not None and self.kinds.get(at) in _RESHAPING:
            # the data (the first input); a Reshape's shape, a Squeeze's axes come after it
            at = next((i for i in self._inputs.get(at, [])[:1] if i), None)
        return SQUASHES.get(self.kinds.get(at, ""))

    def _layer_between(self, early: str, late: str) -> bool:
        """Whether ``late`` is computed from ``early`` through a learned layer (a product, a
        convolution), not by a softmax, an argmax or a top-k of it alone."""
        return early in self._ancestors(late) and any(
            self.kinds.get(x) in _LAYERS and (x == early or early in self._ancestors(x))
            for x in self._ancestors(late) | {late} if x != early)

    def _ancestors(self, name: str, *, values: bool = False) -> set[str]:
        """The node outputs ``name`` is computed from; ``values``: those whose values it is computed
        from, not only their shapes (through a ``Shape`` node: an anchor generator's grid sizes)."""
        seen, todo = set(), [name]
        while todo:
            at = todo.pop()
            if values and self.kinds.get(at) in _SHAPE_ONLY:
                continue
            for i in self._inputs.get(at, []):
                if i not in seen:
                    seen.add(i)
                    todo.append(i)
        return seen

    def session(self, layer: str):
        """A session whose outputs are ``(scores, layer)``, or ``(layer,)`` without class scores."""
        return self._session([layer])

    def _session(self, extra: list[str], scores: bool = True):
        import onnxruntime as ort
        from onnx import helper

        wanted = ([self.output] if scores and self.output else []) + [n for n in extra if n != self.output or not scores]
        graph = self.model.graph
        with self._lock:
            kept = list(graph.output)  # edited in place for the runtime's copy, then put back
            try:
                del graph.output[:]
                graph.output.extend(next((o for o in kept if o.name == n), None) or helper.make_empty_tensor_value_info(n)
                                    for n in wanted)
                proto = self.model.SerializeToString()
            finally:
                del graph.output[:]
                graph.output.extend(kept)
        options = runtime_options(self.threads)
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(self.path.parent))
        with network_errors(f"ONNX Runtime cannot run {self.path.name}"):
            return ort.InferenceSession(proto, options, providers=["CPUExecutionProvider"])


def _box_outputs(outputs: dict[str, object], n: int) -> list[str]:
    """The outputs that are a detector's per box, for ``n`` images: its boxes, ``(N, 4)`` or
    ``(n, N, 4)`` (named as boxes, or with another output of N values beside them; none at all, as a
    blank input gives, whatever their names), and the outputs of N values beside them (scores,
    labels; a Mask R-CNN's masks). Not ``(n, 4)`` scores of 4 classes unnamed as boxes (a graph of
    a fixed batch, a review). ``[]`` where there are no boxes."""
    arrays = {o: v for o, v in outputs.items() if isinstance(v, np.ndarray)}
    for name, value in arrays.items():
        named = "box" in name.lower()
        if value.ndim not in (2, 3) or value.shape[-1] != 4 or (value.ndim == 3 and value.shape[0] != n):
            continue
        count = value.shape[-2]
        if value.ndim == 2 and count == n and not named:
            continue
        beside = [o for o, v in arrays.items() if o != name and v.ndim >= 1
                  and (v.shape[0] == count or (v.ndim >= 2 and v.shape[0] == n and v.shape[1] == count))]
        if beside and (named or count > 4 or count == 0):
            return [name, *beside]
    return []


def _batched(value, n: int):
    """An output of ``n`` images as ``(B, ...)``: scores exported with the batch squeezed away
    (``(K,)`` for one image, ``(B,)`` one score an image: :func:`~eigencam_live.results.batched_scores`)
    or a token axis kept (``(B, 1, K)``) read as ``(B, K)``."""
    if not isinstance(value, np.ndarray):
        return value
    if value.ndim == 3 and value.shape[0] == n and value.shape[1] == 1:
        return value[:, 0]
    return batched_scores(value, n)


#: The input types fed as they are (uint8: pixels 0 to 255).
_INPUT_TYPES = {1: np.float32, 10: np.float16, 2: np.uint8}
#: Ops whose output depends on their input's shape alone, not its values.
_SHAPE_ONLY = {"Shape", "Size"}
#: Nodes that only reshape (or copy) their first input: the class scores after their last operation.
_RESHAPING = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose", "Cast", "Slice", "Gather", "Expand"}
#: Ops of learned layers: scores computed from an output through one are another head's.
_LAYERS = {"Gemm", "MatMul", "Conv", "Einsum"}
#: Ops that keep attention scores attention scores (a scale, a mask, a shift).
_ELEMENTWISE = {"Mul", "Div", "Add", "Sub", "Where", "Cast"}


#: Ops whose rank-4 outputs are distributions, not feature maps (a transformer's attention weights).
_NOT_MAPS = {"Softmax", "LogSoftmax"}
#: Node kinds whose output is pooled over the positions whatever the input's size: never a map.
_POOLED = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "ReduceMean", "ReduceMax", "ReduceSum", "Flatten"}


def runtime_options(threads: int | None):
    """ONNX Runtime's session options, the same for every session of the project: ``threads``
    intra-op threads (``None``: torch's thread count, which the front ends set), one inter-op
    thread, every graph optimisation, and idle pool threads that sleep instead of spinning (beside
    decoding and encoding on two cores a spinning thread took the core they needed: ``annotate``
    with 2 threads ran at 85.7 fps, against 80.7 with spinning)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4  # a failure is raised and said in one line (errors.network_errors), not logged too
    return options


#: The sizes a graph with free sizes is tried at: a 16:9 frame's, then the square one of the zoos.
_WIDE, _SQUARE = (224, 384), (224, 224)


def load_onnx(path: str, labels: list[str] | None = None) -> LoadedModel:
    """A :class:`LoadedModel` for an ONNX file (``net`` is the :class:`OnnxFile`)."""
    graph = OnnxFile(path)
    note, size = graph.note, graph.fixed_input or _WIDE
    if graph.fixed_input is None:
        try:  # free sizes said, but one a graph runs at only (a ViT's position embedding, a Linear on one map)
            graph.layers(_WIDE)
        except NetworkError as exc:
            graph.layers(_SQUARE)  # a graph that fails there too fails here, in its own words
            graph.fixed_input = size = _SQUARE
            note = (f"{graph.path.name} says it takes any size but runs at 224x224 only (at {_WIDE[1]}x{_WIDE[0]}: "
                    f"{str(exc).split(': ', 1)[-1]}): frames are resized to 224x224")
    spec = ModelSpec(name=str(graph.path), layer=graph.default_layer(size), fixed_input=graph.fixed_input)
    if graph.detector:
        note = "; ".join(filter(None, [note, (
            f"{graph.path.name} is a detector (its outputs {graph.detector} are per box): boxes are not read from an "
            "ONNX file, so there are no boxes and no classes, the map alone (run the torch model by name, or from a "
            "factory, for its boxes)")]))
    mean, std = normalisation(graph.channels)
    own = None
    if graph.dtype == np.uint8:  # pixels as they are, 0 to 255: the graph normalises them itself
        mean, std = (0.0,) * graph.channels, (1 / 255,) * graph.channels
        own = "takes pixels 0 to 255 (uint8) and normalises them in its graph"
    elif graph.pixels is not None:  # float pixels the graph normalises itself: as it wants them (an ONNX
        mean, std = (0.0,) * graph.channels, (1 / graph.pixels,) * graph.channels  # trial: normalised twice)
    return LoadedModel(net=graph, spec=spec, labels=labels or [], weights=str(graph.path), trained=True, mean=mean,
                       std=std, channels=graph.channels, note=note, normalises_itself=own, scores_from=graph.squashed())


class OnnxFileBackend:
    """ONNX Runtime running an :class:`OnnxFile` on the CPU (the backend interface of
    :mod:`eigencam_live.backends`)."""

    name = "onnxruntime"
    running = "onnxruntime"
    warning = None

    def __init__(self, loaded: LoadedModel, layer: str) -> None:
        self.loaded = loaded
        self.graph: OnnxFile = loaded.net
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self._sessions: dict[str, object] = {}
        self.layer = layer

    @property
    def preparing(self) -> bool:
        """Whether the layer's session is still to be made (on the next forward pass, taking
        :attr:`threads` or torch's count then)."""
        return self._layer not in self._sessions

    @property
    def threads(self) -> int | None:
        """ONNX Runtime's intra-op threads for the sessions built from now on (``None``: torch's)."""
        return self.graph.threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self.graph.threads = value

    @property
    def layer(self) -> str:
        return self._layer

    @layer.setter
    def layer(self, name: str) -> None:
        self._layer = self._named(name)

    def _named(self, name: str) -> str:
        """The node output ``name`` names: itself, or the one the app shows by that short name (a
        trial: a name copied from the layer box was refused on the command line)."""
        if name in self.graph.order:
            return name
        found = [n for n in self.graph.order if "/" in n and short_name(n) == name]
        if len(found) > 1:
            raise LayerNotFoundError(f"{name!r} is the short name of {len(found)} node outputs in "
                                     f"{self.graph.path.name}: {', '.join(found[:3])}{'...' if len(found) > 3 else ''}; "
                                     "give one whole")
        if not found:
            raise self._no_such(name)
        return found[0]

    def _no_such(self, name: str) -> LayerNotFoundError:
        import difflib

        # a module's name as torch has it (layer4) is in the names of its nodes' outputs (/layer4/...)
        inside = [n for n in self.graph.order if f"/{name}/" in n]
        close = difflib.get_close_matches(name, self.graph.order, n=5, cutoff=0.4)
        if inside:
            hint = (f" {len(inside)} outputs are named inside {name!r}, the last {inside[-1]}; --list-layers lists "
                    "the feature maps.")
        else:
            hint = f" Closest: {', '.join(close)}." if close else " --list-layers lists them."
        return LayerNotFoundError(f"no node output named {name!r} in {self.graph.path.name}.{hint}")

    def probe(self, layer: str, size: tuple[int, int]) -> tuple[int, int, int]:
        shapes = self.graph.layers(size)
        self.loaded.classes = self.graph.classes
        layer = self._named(layer)  # (with the closest names, as the layer setter: a library trial)
        if layer not in shapes:
            if layer in self.graph.small_maps(size):  # a map, too small at this size: the engine says so
                return self.graph.small_maps(size)[layer]
            if layer == self.graph.output:  # (its shape is not kept among the others': a trial got none)
                raise LayerNotFoundError(f"layer {layer!r} is the network's class scores, not a spatial feature map: "
                                         "choose one that --list-layers shows")
            shape = self.graph.shapes(size).get(layer)
            raise LayerNotFoundError(f"layer {layer!r} is not a spatial feature map"
                                     f"{f' (its output is {shape} for a {size[1]}x{size[0]} input)' if shape else ''}: "
                                     "choose one that --list-layers shows")
        return shapes[layer]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._layer not in self._sessions:
            self._sessions[self._layer] = self.graph.session(self._layer)
        session, name, n = self._sessions[self._layer], self.graph.input, self.graph.fixed_batch
        b = x.shape[0]
        feed = self.graph.feed
        if n is None or b == n:
            outs = session.run(None, {name: feed(x.numpy())})
        else:  # a graph exported for a fixed batch: run n frames at a time, the last run topped up
            parts = []
            for start in range(0, b, n):
                chunk = x[start : start + n]
                if len(chunk) < n:
                    chunk = torch.cat([chunk, chunk[-1:].expand(n - len(chunk), *chunk.shape[1:])])
                # (scores exported with the batch squeezed away: (K,) made (1, K) before it is cut)
                parts.append([_batched(out, n)[: b - start] for out in session.run(None, {name: feed(chunk.numpy())})])
            outs = [np.concatenate(out) for out in zip(*parts, strict=True)]
        raw = outs[-1].astype(np.float32, copy=False)  # the layer asked for (fp16 graphs: read in fp32)
        logits = class_scores(_batched(outs[0], b)) if len(outs) == 2 else None
        logits = np.zeros((b, 0), np.float32) if logits is None else logits.astype(np.float32, copy=False)
        return torch.from_numpy(logits), to_feature_map(torch.from_numpy(raw), tuple(x.shape[-2:]), batch=b)

    def forward_gram(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        """:meth:`forward` and ``None``: the Eigen-CAM solver computes the Gram matrix itself."""
        return (*self.forward(x), None)

    def feature_layers(self, size: tuple[int, int]) -> list[Layer]:
        kinds = self.graph.kinds
        return [Layer(name, kinds.get(name, "?"), shape) for name, shape in self.graph.layers(size).items()]
