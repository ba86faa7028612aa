"""The traced CPU forward gives the eager network's maps and predictions, and falls back when it
cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eigencam_live.backends.traced import build_traced
from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.models import load_model

from .conftest import scene


def _pair(model: str, **cfg):
    torch.manual_seed(0)
    loaded = load_model(model, "none")
    cfg = {"backend": "torch", "short_side": 96, **cfg}
    eager = Engine(EngineConfig(device="cpu", model=model, weights="none", optimize=False, **cfg), model=loaded)
    traced = Engine(EngineConfig(device="cpu", model=model, weights="none", optimize=True, **cfg), model=loaded)
    return eager, traced


@pytest.mark.parametrize(("model", "layer"), [("resnet18", None), ("mobilenet_v3_small", None), ("resnet18", "layer3"),
                                              ("resnet18", "layer4.1.relu"),
                                              # its forward ReLUs the layer's output in place: the
                                              # copy returned the ReLU'd values and was refused
                                              ("densenet121", None)])
def test_traced_forward_gives_the_eager_maps_and_predictions(model, layer):
    eager, traced = _pair(model, layer=layer)
    frames = np.stack([scene(120, 200, corner=c, seed=i) for i, c in enumerate(["tl", "br"])])
    want, got = eager.process(frames), traced.process(frames)
    for w, g in zip(want, got, strict=True):
        assert float(np.corrcoef(w.cam.ravel(), g.cam.ravel())[0, 1]) > 0.9999
        np.testing.assert_allclose(g.explained, w.explained, atol=1e-4)
        assert [lbl for lbl, _ in g.predictions] == [lbl for lbl, _ in w.predictions]
    assert eager.traced is False
    # "layer4.1.relu" runs twice per block: fx names the first call, a hook sees the last; the
    # check at build time must catch that and fall back rather than show another layer's map.
    assert traced.traced is (layer != "layer4.1.relu")


def test_settings_that_keep_the_network_keep_its_traced_copy():
    _, traced = _pair("resnet18")
    frame = scene(120, 200)
    traced.process_one(frame)
    copies = dict(traced.backend._traced)
    traced.reconfigure(component=2, smoothing=0.5, method="exact")
    traced.process_one(frame)
    assert traced.backend._traced == copies and traced.traced
    traced.reconfigure(layer="layer3")
    traced.process_one(frame)
    assert len(traced.backend._traced) == 2 and traced.traced


def test_untraced_families_stay_eager():
    torch.manual_seed(0)
    eff = Engine(EngineConfig(device="cpu", model="efficientnet_b0", weights="none", short_side=64))
    eff.process_one(scene(64, 96))
    assert eff.traced is False


@pytest.mark.parametrize("model", ["resnet18", "mobilenet_v3_small"])
def test_bf16_on_the_cpu_runs_a_channels_last_copy_with_the_eager_numbers(model):
    # bf16 is for speed (CPUs with bf16 kernels): the copy is frozen, not re-optimised (that folds
    # batch norm in bf16), so it gives the eager bf16 network's maps; going back to fp32 gives
    # channels-first weights again.
    eager, traced = _pair(model, precision="bf16")
    frames = np.stack([scene(120, 200, corner=c, seed=i) for i, c in enumerate(["tl", "br"])])
    want, got = eager.process(frames), traced.process(frames)
    assert traced.traced and not eager.traced
    def conv_weight():
        return next(m.weight for m in traced.loaded.net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))

    assert conv_weight().dtype == torch.bfloat16 and conv_weight().is_contiguous(memory_format=torch.channels_last)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g.cam, w.cam)
        np.testing.assert_array_equal(g.explained, w.explained)
    traced.reconfigure(precision="fp32")
    assert conv_weight().dtype == torch.float32 and conv_weight().is_contiguous()


def test_build_refuses_a_copy_that_does_not_match():
    torch.manual_seed(0)
    loaded = load_model("resnet18", "none")
    x = torch.randn(1, 3, 64, 64)
    assert build_traced(loaded.net, "layer4", x) is not None
    assert build_traced(loaded.net, "layer4.1.relu", x) is None
    assert build_traced(loaded.net, "no.such.layer", x) is None


def test_one_copy_built_on_one_frame_serves_every_batch_size(monkeypatch):
    """The copy is traced and checked on the batch's first frame (on a batch of 32, ``annotate -b
    32``, building it took over a minute in which a stop went unheard), and serves a video's last,
    shorter batch too; a copy that gives other numbers at another batch size is dropped."""
    import eigencam_live.backends.traced as traced_module

    eager, traced = _pair("resnet18")
    built = []
    build = traced_module.build_traced
    monkeypatch.setattr("eigencam_live.backends.torch_backend.build_traced",
                        lambda net, layer, x: (built.append(tuple(x.shape)), build(net, layer, x))[1])
    frames = np.stack([scene(64, 96, seed=i) for i in range(5)])
    got = traced.process(frames[:4]) + traced.process(frames[4:])
    assert built == [(4, 3, 96, 128)] and traced.traced  # (its first frame is sliced off inside)
    (copy,) = traced.backend._traced.values()
    assert copy.shape == (3, 96, 128) and copy.batches == {1, 4}
    want = eager.process(frames[:4]) + eager.process(frames[4:])
    for w, g in zip(want, got, strict=True):
        assert float(np.corrcoef(w.cam.ravel(), g.cam.ravel())[0, 1]) > 0.9999
    original = copy.module
    baked = (  # copies that baked their batch size in, each caught at a new batch size:
        lambda x: (lambda out: {**out, "logits": out["logits"] + float(x.shape[0] > 1)})(original(x)),  # other numbers
        lambda x: (lambda out: {k: v[:1].expand_as(v) for k, v in out.items()})(original(x)),  # the first frame's, repeated
        lambda x: (lambda out: {k: v[:1] for k, v in out.items()})(original(x)),  # one frame's rows only
        lambda x: original(x) if x.shape[0] == 1 else original(x[:0]) + 1,  # fails at other sizes
    )
    for n, module in enumerate(baked, start=2):
        traced.reset()
        traced.backend._traced.clear()
        traced.process(frames[:1])  # built again on one frame
        (copy,) = traced.backend._traced.values()
        copy.module = module
        traced.reset()
        eager.reset()  # (both from the same video state)
        got = traced.process(frames[:n])
        assert traced.traced is False and list(traced.backend._traced.values()) == [None], n
        for w, g in zip(eager.process(frames[:n]), got, strict=True):
            assert [lbl for lbl, _ in g.predictions] == [lbl for lbl, _ in w.predictions]
            np.testing.assert_allclose(g.cam, w.cam, atol=1e-5)
