"""Exceptions for mistakes a user can make. Front ends turn each into one clear line.

Every message says what was wrong and what is allowed.
"""

from __future__ import annotations

import contextlib
import re


class EigenCamError(Exception):
    """Base class: a user-facing error with a one-line message."""


class ModelError(EigenCamError):
    """Unknown model name."""


class NetworkError(ModelError):
    """The network itself failed: it refused the input it was given (a size, a batch, a type it
    was not made for), or its runtime cannot run it (an ONNX opset or op it does not have)."""


#: What ONNX Runtime's messages carry for its developers, not for a user: the status prefix
#: (``[ONNXRuntimeError] : 2 : INVALID_ARGUMENT :``), its source file, line and C++ signature, and
#: the check that failed (``x == y was false.``), before the sentence that says what happened.
_ORT_NOISE = [
    (re.compile(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*"), ""),
    (re.compile(r"Load model from .*? failed:\s*"), ""),
    (re.compile(r"Non-zero status code returned while running (\w+) node\. Name:'([^']*)' Status Message:\s*"),
     r"node \2 (\1): "),
    (re.compile(r"/\S*onnxruntime\S*:\d+ .*?\) (?=\S)"), ""),
    (re.compile(r"[^:.]*? was false\."), " "),
    (re.compile(r"ONNX Runtime only \*guarantees\* support .*?Opset (\d+) is under development.*?till opset (\d+)\.?"),
     r"its opset \1 is newer than this ONNX Runtime runs (up to \2): export it at opset \2 or lower, or update "
     r"onnxruntime"),
]


#: How torch (CPU: "can't allocate memory", CUDA: "out of memory") and ONNX Runtime ("Failed to
#: allocate memory") say that memory ran out.
_NO_MEMORY = ("out of memory", "not enough memory", "allocate memory")


def _ort_text(line: str) -> str:
    for pattern, repl in _ORT_NOISE:
        line = pattern.sub(repl, line)
    return re.sub(r"\s+", " ", line).strip()


@contextlib.contextmanager
def network_errors(what: str, hint: str = ""):
    """Inside: an exception of the network's own code or runtime becomes a :class:`NetworkError`,
    ``"{what}: {its type}: {its first line}{hint}"`` (the original chained), so that front ends say it
    in one line; running out of memory, however said, a :class:`MemoryError` (which front ends say
    as such). The project's own errors and interrupts pass unchanged."""
    try:
        yield
    except (EigenCamError, MemoryError):
        raise
    except Exception as exc:
        text = str(exc).strip()
        if any(words in text.lower() for words in _NO_MEMORY):  # torch's, ONNX Runtime's: as Python's own
            raise MemoryError(text.splitlines()[0]) from exc
        if type(exc).__module__.startswith("onnxruntime"):  # its messages say what failed, not its type
            line = _ort_text(" ".join(text.split("\n")))  # (what it got and expected comes on lines of its own)
        else:
            line = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
        raise NetworkError(f"{what}: {line[:300]}{hint}") from exc


class LayerNotFoundError(EigenCamError):
    """A target layer that does not exist or does not yield a spatial feature map."""


class WeightsError(EigenCamError):
    """A weights file that is missing, unreadable or does not fit the model."""


class WeightsUnavailableError(WeightsError):
    """ImageNet weights are neither cached nor downloadable (offline). Fall back to ``none``."""


class ConfigError(EigenCamError, ValueError):
    """A setting outside its allowed range (names the field, the value and what is allowed).

    Attributes:
        field: the setting's name (an :class:`~eigencam_live.engine.EngineConfig` or
            :class:`~eigencam_live.render.RenderConfig` field), or ``None`` when no single one is
            to blame. Front ends turn it into their own name for it (``--short-side``, a combo box).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


def counted(n: int, noun: str) -> str:
    """``"1 input"``, ``"3 inputs"``: a count said as a sentence says it, not ``"input(s)"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def plain_numbers(config, ints: tuple[str, ...] = (), reals: tuple[str, ...] = (), sequences: tuple[str, ...] = ()) -> None:
    """Set a frozen config's fields as Python's own numbers where numpy's were given (a library
    trial: ``component=np.int64(2)`` from a loop over ``np.arange`` was refused, "must be an
    integer... Got np.int64(2)"): integers for ``ints``, floats for ``reals``, a tuple of floats
    for ``sequences`` (an array too). What is not a number is left for the checks to refuse."""
    import numbers

    def real(v):
        return float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) and type(v) not in (int, float) else v

    for name in ints:
        v = getattr(config, name)
        if isinstance(v, numbers.Integral) and not isinstance(v, bool) and type(v) is not int:
            object.__setattr__(config, name, int(v))
    for name in reals:
        object.__setattr__(config, name, real(getattr(config, name)))
    for name in sequences:
        v = getattr(config, name)
        if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
            v = v.tolist()
            v = v if isinstance(v, list) else [v]
        if isinstance(v, (list, tuple)):
            object.__setattr__(config, name, tuple(real(x) for x in v))


class SourceError(EigenCamError):
    """A frame source that cannot be opened or read."""


class SinkError(EigenCamError):
    """An output that cannot be written."""
