"""Small CNNs of the common families, written the way users write them, for the fold_model() tests.

Every factory takes `num_classes` and returns a model (B, 3, 16, 16) -> (B, num_classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SHAPE = (3, 16, 16)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: type = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         act(inplace=True))


class SqueezeExcite(nn.Module):
    """x * sigmoid(fc2(relu(fc1(mean(x))))) with a view back to (B, C, 1, 1)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.shape
        s = F.adaptive_avg_pool2d(x, 1).view(b, c)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s.view(b, c, 1, 1)


class ToyEverything(nn.Module):
    """One of each rule: residual add, depthwise (x1 and x2 multiplier), split with literal sizes,
    chunk, concat then grouped conv, SE block, global mean, flatten -> Linear, functional and in-place
    activations."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.res1 = nn.Conv2d(8, 8, 3, padding=1)
        self.res_bn = nn.BatchNorm2d(8)
        self.dw = conv_bn(8, 8, groups=8, act=nn.ReLU6)
        self.dw2 = nn.Conv2d(8, 16, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(16, 16, 1)
        self.branch_a = nn.Conv2d(8, 8, 3, padding=1)
        self.branch_b = nn.Conv2d(8, 8, 1)
        self.grouped = conv_bn(16, 16, groups=4)
        self.se = SqueezeExcite(16)
        self.mix = nn.Conv2d(8, 12, 1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12 * 4, 24), nn.ReLU(),
                                  nn.Dropout(0.1))
        self.side = nn.Linear(12, 24)
        self.fc = nn.Linear(24, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = F.relu(x + self.res_bn(self.res1(x)))
        x = self.pw(self.dw2(self.dw(x)))
        a, b = torch.split(x, [8, 8], dim=1)
        x = torch.cat([self.branch_a(a), self.branch_b(b)], dim=1)
        x = self.se(self.grouped(x))
        p, q = x.chunk(2, dim=1)
        x = self.pool(self.mix(p - q)).relu_()
        return self.fc(self.head(x) + self.side(x.mean((2, 3))))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class TinyResNet18(nn.Module):
    """ResNet-18 layout (4 stages of 2 basic blocks), narrow."""

    def __init__(self, num_classes: int = 5, widths: tuple[int, ...] = (8, 16, 16, 32)) -> None:
        super().__init__()
        self.conv1 = conv_bn(3, widths[0])
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks += [BasicBlock(c, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            c = w
        self.layers = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.layers(self.conv1(x))), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn(cin, hidden, 1, act=nn.ReLU6)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class TinyMobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 8, stride=2, act=nn.ReLU6), InvertedResidual(8, 8, 1, 1), InvertedResidual(8, 12, 2, 4),
            InvertedResidual(12, 12, 1, 4), conv_bn(12, 32, 1, act=nn.ReLU6),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean([2, 3]))


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand1: int, expand3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.squeeze(x))
        return torch.cat([self.act(self.expand1x1(x)), self.act(self.expand3x3(x))], 1)


class TinySqueezeNet(nn.Module):
    """Fire modules (concat), a grouped conv after a concat, and a conv classifier + global pool."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16, 4, 8, 8), Fire(16, 4, 8, 8), nn.Conv2d(16, 16, 3, padding=1, groups=2), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(16, num_classes, 1), nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


class TinyVGG(nn.Module):
    """VGG with batch norm, flattened with x.view(x.size(0), -1)."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 8), conv_bn(8, 8), nn.MaxPool2d(2), conv_bn(8, 16), conv_bn(16, 16),
                                      nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(16 * 4 * 4, 32), nn.ReLU(True), nn.Dropout(), nn.Linear(32,
                                                                                                       num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))


class TinyMnistExample(nn.Module):
    """The network of PyTorch's MNIST example (examples/mnist), at this size: ends in log_softmax(x, dim=1)."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16 * 6 * 6, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = self.dropout2(F.relu(self.fc1(torch.flatten(x, 1))))
        return F.log_softmax(self.fc2(x), dim=1)


class Resampler(nn.Module):
    """Padding modules and F.pad, a shared PReLU slope, upsampling (module and F.interpolate), torch.amax, and a
    spatial softmax (attention pooling) before the classifier."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(3, 8, 3)
        self.act = nn.PReLU()
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.attn = nn.Conv2d(16, 16, 1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(self.pad(x)))
        y = torch.cat([self.up(self.down(x)), F.interpolate(x, size=(16, 16), mode="nearest")], dim=1)
        y = F.pad(y, (1, 1, 1, 1), mode="replicate")
        weights = torch.softmax(self.attn(y).flatten(2), dim=-1)  # where to look, per channel
        pooled = (y.flatten(2) * weights).sum(-1)
        return self.fc(torch.cat([pooled, torch.amax(y, dim=(2, 3))], dim=1))


def make(name: str, num_classes: int = 5) -> nn.Module:
    """Factory for `source={"factory": "transform_models:make", "kwargs": {"name": ...}}`."""
    return TOY_MODELS[name](num_classes)


TOY_MODELS = {
    "everything": ToyEverything,
    "resnet18": TinyResNet18,
    "mobilenetv2": TinyMobileNetV2,
    "squeezenet": TinySqueezeNet,
    "vgg-bn": TinyVGG,
    "mnist-example": TinyMnistExample,
    "resampler": Resampler,
}


class ChannelSoftmax(nn.Module):
    """Softmax over channels mixes the folded images: fold_model() has no rule for it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(torch.softmax(self.conv(x), 1), 1), 1))
