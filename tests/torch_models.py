"""A small PyTorch conv net for the ONNX/PyTorch conversion tests, trained in about a second on synthetic data.

`tiny_cnn` follows the `module:function` contract of `tinydeploy convert/flash` (returns (module, example_inputs)).
Inputs are channels first, as in PyTorch: (N, 3, 12, 16). Class k < 3: channel k is brighter; class 3: all darker.
"""

from __future__ import annotations

import numpy as np

INPUT_SHAPE = (3, 12, 16)  # C, H, W
CLASSES = 4


def samples(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, count)
    data = rng.normal(0.0, 0.5, (count, *INPUT_SHAPE)).astype(np.float32)
    for index, label in enumerate(labels):
        if label < 3:
            data[index, label] += 1.0
        else:
            data[index] -= 0.8
    return data, labels


def build_trained():
    import torch

    class TinyCnn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.norm1 = torch.nn.BatchNorm2d(8)
            self.pool = torch.nn.MaxPool2d(2)
            self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.head = torch.nn.Linear(16, CLASSES)

        def forward(self, x):
            x = self.pool(torch.relu(self.norm1(self.conv1(x))))
            x = torch.relu(self.conv2(x))
            return torch.softmax(self.head(x.mean(dim=(2, 3))), dim=1)

    torch.manual_seed(0)
    model = TinyCnn()
    data, labels = samples(512, seed=0)
    inputs, targets = torch.from_numpy(data), torch.from_numpy(labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for step in range(60):
        batch = slice((step * 64) % 512, (step * 64) % 512 + 64)
        optimizer.zero_grad()
        probabilities = model(inputs[batch])
        loss = torch.nn.functional.nll_loss(torch.log(probabilities + 1e-7), targets[batch])
        loss.backward()
        optimizer.step()
    return model.eval()


def tiny_cnn():
    """module:function contract: (module, example_inputs)."""
    import torch

    return build_trained(), (torch.from_numpy(samples(2, seed=5)[0]),)


def tiny_conv1d():
    """A keyword-spotting-shaped 1-D net (untrained): (N, C, L) input, a depthwise 1-D conv, global mean."""
    import torch

    class TinyConv1d(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(4, 8, 5, padding=2)
            self.depthwise = torch.nn.Conv1d(8, 8, 3, padding=1, groups=8)
            self.head = torch.nn.Linear(8, 5)

        def forward(self, x):
            x = torch.relu(self.depthwise(torch.relu(self.conv(x))))
            return self.head(x.mean(dim=2))

    torch.manual_seed(1)
    return torch.export.export(TinyConv1d().eval(), (torch.randn(1, 4, 49),))


def padded_max_pools():
    """Max pools onnx2tf pads with float32's lowest value (untrained): the stem pool of ResNets (3x3, stride 2,
    padding 1 on an even size, 10 -> 5) and a ceil_mode pool on an odd size (5 -> 3), over inputs that go negative."""
    import torch

    class PaddedMaxPools(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 6, 3)
            self.stem_pool = torch.nn.MaxPool2d(3, stride=2, padding=1)
            self.ceil_pool = torch.nn.MaxPool2d(2, ceil_mode=True)
            self.head = torch.nn.Linear(6 * 3 * 3, 3)

        def forward(self, x):
            x = self.ceil_pool(self.stem_pool(self.conv(x)))
            return self.head(torch.flatten(x, 1))

    torch.manual_seed(2)
    return torch.export.export(PaddedMaxPools().eval(), (torch.randn(1, 2, 12, 12),))


def batch_first_gru():
    """nn.GRU over (N, T, F) (untrained), which onnx2tf fails to convert."""
    import torch

    class Gru(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.GRU(6, 16, batch_first=True)
            self.head = torch.nn.Linear(16, 4)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    torch.manual_seed(3)
    return torch.export.export(Gru().eval(), (torch.randn(1, 10, 6),))


def unrolled_gru_cell():
    """A GRU over (N, T, F) written as nn.GRUCell in a loop (untrained): x[:, t] is a constant-index Gather."""
    import torch

    class UnrolledGru(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = torch.nn.GRUCell(6, 12)
            self.head = torch.nn.Linear(12, 4)

        def forward(self, x):
            state = torch.zeros(x.shape[0], 12)
            for step in range(x.shape[1]):
                state = self.cell(x[:, step], state)
            return self.head(state)

    torch.manual_seed(4)
    return torch.export.export(UnrolledGru().eval(), (torch.randn(1, 5, 6),))


def tiny_attention():
    """nn.MultiheadAttention (untrained): q, k and v are Gathers of one packed projection."""
    import torch

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Linear(8, 16)
            self.attention = torch.nn.MultiheadAttention(16, 2, batch_first=True)
            self.head = torch.nn.Linear(16, 3)

        def forward(self, x):
            h = self.embed(x)
            return self.head((h + self.attention(h, h, h, need_weights=False)[0]).mean(dim=1))

    torch.manual_seed(5)
    return torch.export.export(Attention().eval(), (torch.randn(1, 6, 8),))


def float_limit_mask():
    """Scores masked with float32's lowest value before a max (untrained): calibration takes the mask into range."""
    import torch

    class Masked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.score = torch.nn.Linear(8, 8)
            self.register_buffer("mask", torch.tensor([[False, True] * 4]))

        def forward(self, x):
            scores = self.score(x).masked_fill(self.mask, torch.finfo(torch.float32).min)
            return scores.amax(dim=1, keepdim=True)

    torch.manual_seed(6)
    return torch.export.export(Masked().eval(), (torch.randn(1, 8),))
