"""ONNX files as models: a network trained in any framework and exported to ONNX, inspected as is.

The file's graph is read with the ``onnx`` package; its layers are the outputs of its nodes that read
as a feature map (rank 4, ``(B, C, h, w)``, with at least 2 x 2 positions; or tokens). To run one,
the graph is edited to return that tensor as an extra output beside the first graph output (the
logits), and ONNX Runtime runs the edited graph on the CPU. Shapes come from the network itself: one
run of a blank image with every node output exposed (:meth:`OnnxFile.layers`).

The file holds no labels and no normalisation: class indices and ImageNet's mean and std (for a
grey input, one channel, their average) unless ``EngineConfig.labels`` / ``mean`` / ``std`` say
otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from eigencam_live.errors import LayerNotFoundError, ModelError, network_errors
from eigencam_live.models import Layer, LoadedModel, ModelSpec, to_feature_map
from eigencam_live.models.loaded import normalisation
from eigencam_live.results import class_scores

__all__ = ["OnnxFile", "OnnxFileBackend", "load_onnx"]


class OnnxFile:
    """An ONNX classifier: ``(B, 3, H, W)`` image in (``(B, 1, H, W)`` grey), logits as its first output.

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
            self.model = onnx.load(str(self.path))
        except Exception as exc:
            raise ModelError(f"cannot read ONNX file {self.path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
        graph = self.model.graph
        weights = {i.name for i in graph.initializer}
        inputs = [i for i in graph.input if i.name not in weights]
        dims = [[d.dim_value or None for d in i.type.tensor_type.shape.dim] for i in inputs]
        if len(inputs) != 1 or len(dims[0]) != 4 or dims[0][1] not in (3, 1, None) or not graph.output:
            got = ", ".join(f"{i.name} {d}" for i, d in zip(inputs, dims, strict=True)) or "none"
            raise ModelError(f"{self.path.name}: expected one image input (B, 3, H, W), or (B, 1, H, W) for grey, "
                             f"and logits as the first output. Got inputs: {got}")
        kind = inputs[0].type.tensor_type.elem_type
        if kind != onnx.TensorProto.FLOAT:
            raise ModelError(f"{self.path.name}: its input {inputs[0].name} is {onnx.helper.tensor_dtype_to_np_dtype(kind)}; "
                             "eigencam-live feeds float32 (B, 3, H, W) RGB (or (B, 1, H, W) grey), normalised (--mean/--std): "
                             "export it so")
        if dims[0][1] is None and dims[0][3] == 3:
            raise ModelError(f"{self.path.name}: its input {inputs[0].name} {dims[0]} looks channels-last (B, H, W, 3); "
                             "eigencam-live feeds float32 (B, 3, H, W): export it so")
        self.input = inputs[0].name
        #: 3 (RGB) or 1 (grey: fed the frames' luma)
        self.channels = dims[0][1] or 3
        self.output = graph.output[0].name
        h, w = dims[0][2], dims[0][3]
        self.fixed_input = (h, w) if h and w else None
        #: the batch size the graph was exported for (``torch.onnx.export``'s default: 1), or ``None``
        self.fixed_batch: int | None = dims[0][0]
        self.classes: int | None = None  # the width of its scores, once :meth:`layers` has run
        self.order = [o for node in graph.node for o in node.output if o]  # topological: ONNX requires it
        #: the op type that makes each node output (``Conv``, ``Relu``, ...)
        self.kinds = {o: node.op_type for node in graph.node for o in node.output if o}
        self._layers: dict[tuple[int, int], dict[str, tuple[int, ...]]] = {}

    def layers(self, size: tuple[int, int]) -> dict[str, tuple[int, int, int]]:
        """Node outputs that read as feature maps for a ``size = (h, w)`` input: ``{name: (C, h', w')}``,
        in graph order. One run with every node output exposed, cached by size."""
        if size not in self._layers:
            session = self._session(self.order)
            n = self.fixed_batch or 1
            x = np.zeros((n, self.channels, *size), np.float32)
            found = {}
            with network_errors(f"{self.path.name} failed on a {size[1]}x{size[0]} input"):
                values = session.run(None, {self.input: x})
            for meta, value in zip(session.get_outputs(), values, strict=True):
                if meta.name == self.output and isinstance(value, np.ndarray) and class_scores(value) is not None:
                    self.classes = int(class_scores(value).shape[1])
                    continue
                if not isinstance(value, np.ndarray) or value.ndim == 0 or len(value) != n:
                    continue  # (the graph's output itself may be the map: a backbone without a head)
                if self.kinds.get(meta.name) in _NOT_MAPS:  # attention weights (B, heads, N, N): no picture
                    continue
                try:
                    fmap = to_feature_map(torch.from_numpy(np.ascontiguousarray(value[:1])), size, batch=1)
                except LayerNotFoundError:
                    continue
                if fmap.shape[0] == 1 and fmap.shape[2] * fmap.shape[3] >= 4:
                    found[meta.name] = tuple(int(d) for d in fmap.shape[1:])
            self._layers[size] = {name: found[name] for name in self.order if name in found}  # in graph order
        return self._layers[size]

    def default_layer(self, size: tuple[int, int]) -> str:
        """The last feature map of the graph (before global pooling, for a CNN)."""
        maps = [n for n, shape in self.layers(size).items() if len(shape) == 3]
        if not maps:
            raise ModelError(f"{self.path.name} has no layer with a spatial feature map")
        return maps[-1]

    def session(self, layer: str):
        """A session whose outputs are ``(logits, layer)``."""
        return self._session([layer])

    def _session(self, extra: list[str]):
        import onnx
        import onnxruntime as ort
        from onnx import helper

        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        del model.graph.output[1:]  # logits first, then what was asked for
        for name in extra:
            if name != self.output:
                model.graph.output.append(helper.make_empty_tensor_value_info(name))
        with network_errors(f"ONNX Runtime cannot run {self.path.name}"):
            return ort.InferenceSession(model.SerializeToString(), runtime_options(self.threads),
                                        providers=["CPUExecutionProvider"])


#: Ops whose rank-4 outputs are distributions, not feature maps (a transformer's attention weights).
_NOT_MAPS = {"Softmax", "LogSoftmax"}


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


def load_onnx(path: str, labels: list[str] | None = None) -> LoadedModel:
    """A :class:`LoadedModel` for an ONNX file (``net`` is the :class:`OnnxFile`)."""
    graph = OnnxFile(path)
    side = 224
    size = graph.fixed_input or (side, side)
    spec = ModelSpec(name=str(graph.path), layer=graph.default_layer(size), fixed_input=graph.fixed_input)
    mean, std = normalisation(graph.channels)
    return LoadedModel(net=graph, spec=spec, labels=labels or [], weights=str(graph.path), trained=True, mean=mean,
                       std=std, channels=graph.channels)


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
        if name not in self.graph.order:
            import difflib

            close = difflib.get_close_matches(name, self.graph.order, n=5, cutoff=0.4)
            hint = f" Closest: {', '.join(close)}." if close else " --list-layers lists them."
            raise LayerNotFoundError(f"no node output named {name!r} in {self.graph.path.name}.{hint}")
        self._layer = name

    def probe(self, layer: str, size: tuple[int, int]) -> tuple[int, int, int]:
        shapes = self.graph.layers(size)
        self.loaded.classes = self.graph.classes
        if layer not in shapes:
            if layer not in self.graph.order:
                raise LayerNotFoundError(f"no node output named {layer!r} in {self.graph.path.name}")
            raise LayerNotFoundError(f"layer {layer!r} is not a spatial feature map (choose one that --list-layers shows)")
        return shapes[layer]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._layer not in self._sessions:
            self._sessions[self._layer] = self.graph.session(self._layer)
        session, name, n = self._sessions[self._layer], self.graph.input, self.graph.fixed_batch
        b = x.shape[0]
        if n is None or b == n:
            outs = session.run(None, {name: x.contiguous().numpy()})
        else:  # a graph exported for a fixed batch: run n frames at a time, the last run topped up
            parts = []
            for start in range(0, b, n):
                chunk = x[start : start + n]
                if len(chunk) < n:
                    chunk = torch.cat([chunk, chunk[-1:].expand(n - len(chunk), *chunk.shape[1:])])
                parts.append([out[: b - start] for out in session.run(None, {name: chunk.contiguous().numpy()})])
            outs = [np.concatenate(out) for out in zip(*parts, strict=True)]
        raw = outs[-1]  # the layer asked for (the graph's only output, for a backbone's own map)
        logits = class_scores(outs[0]) if len(outs) == 2 else None
        logits = np.zeros((b, 0), np.float32) if logits is None else logits  # no class scores: maps only
        return torch.from_numpy(logits), to_feature_map(torch.from_numpy(raw), tuple(x.shape[-2:]), batch=b)

    def forward_gram(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        """:meth:`forward` and ``None``: the Eigen-CAM solver computes the Gram matrix itself."""
        return (*self.forward(x), None)

    def feature_layers(self, size: tuple[int, int]) -> list[Layer]:
        kinds = self.graph.kinds
        return [Layer(name, kinds.get(name, "?"), shape) for name, shape in self.graph.layers(size).items()]
