"""
Reference CRNNs in the published sources' exact layouts, for the conversion parity tests.

Written for these tests from the sources' public definitions (not copied from them): module names, nesting and
`nn.Sequential` indices match, so `state_dict()` has exactly the keys the published checkpoints have, and each
`forward` follows the source's own.

- `MeijieruCRNN`: meijieru/crnn.pytorch models/crnn.py `CRNN(imgH=32, nc, nclass, nh)`; returns `(T, B, nclass)`.
- `ClovaaiNoneVGGBiLSTMCTC`: clovaai/deep-text-recognition-benchmark model.py `Model` as None-VGG-BiLSTM-CTC;
  returns `(B, T, num_class)`.
- `BgshihCRNN`: bgshih/crnn's Torch7 network (model/crnn_demo/config.lua) transcribed to PyTorch module by module,
  with its own LSTM (src/LstmLayer.lua) and BiRnnJoin; takes 0-255 pixel values, returns log-probabilities
  `(B, T, nClasses + 1)`, and exports its weights as the positional Torch7 snapshot. It is our reading of the Lua
  code, not Torch7 itself.

`randomize_` gives any of them random weights and random batch-norm statistics.
"""

from __future__ import annotations

import torch
from torch import nn

_VGG_KERNELS = (3, 3, 3, 3, 3, 3, 2)
_VGG_PADDINGS = (1, 1, 1, 1, 1, 1, 0)


# ---- meijieru/crnn.pytorch -----------------------------------------------------------------------------------------


class MeijieruBidirectionalLSTM(nn.Module):
    """A sequence-first bidirectional LSTM followed by a Linear applied to every frame."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        super().__init__()
        self.rnn = nn.LSTM(n_in, n_hidden, bidirectional=True)
        self.embedding = nn.Linear(n_hidden * 2, n_out)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # (T, B, n_in)
        recurrent, _ = self.rnn(frames)
        steps, batch, size = recurrent.shape
        return self.embedding(recurrent.reshape(steps * batch, size)).reshape(steps, batch, -1)


class MeijieruCRNN(nn.Module):
    def __init__(self, nc: int = 1, nclass: int = 37, nh: int = 256):
        super().__init__()
        channels = (64, 128, 256, 256, 512, 512, 512)
        cnn = nn.Sequential()

        def conv_relu(index: int, batch_norm: bool = False) -> None:
            in_channels = nc if index == 0 else channels[index - 1]
            cnn.add_module(
                f"conv{index}",
                nn.Conv2d(in_channels, channels[index], _VGG_KERNELS[index], 1, _VGG_PADDINGS[index]),
            )
            if batch_norm:
                cnn.add_module(f"batchnorm{index}", nn.BatchNorm2d(channels[index]))
            cnn.add_module(f"relu{index}", nn.ReLU(True))

        conv_relu(0)
        cnn.add_module("pooling0", nn.MaxPool2d(2, 2))
        conv_relu(1)
        cnn.add_module("pooling1", nn.MaxPool2d(2, 2))
        conv_relu(2, True)
        conv_relu(3)
        cnn.add_module("pooling2", nn.MaxPool2d((2, 2), (2, 1), (0, 1)))
        conv_relu(4, True)
        conv_relu(5)
        cnn.add_module("pooling3", nn.MaxPool2d((2, 2), (2, 1), (0, 1)))
        conv_relu(6, True)
        self.cnn = cnn
        self.rnn = nn.Sequential(MeijieruBidirectionalLSTM(512, nh, nh), MeijieruBidirectionalLSTM(nh, nh, nclass))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        conv = self.cnn(images)
        if conv.shape[2] != 1:
            raise ValueError("the height of conv must be 1")
        conv = conv.squeeze(2).permute(2, 0, 1)  # (W, B, C): frames first
        return self.rnn(conv)


# ---- clovaai/deep-text-recognition-benchmark -----------------------------------------------------------------------


class ClovaaiVGGFeatureExtractor(nn.Module):
    def __init__(self, input_channel: int, output_channel: int = 512):
        super().__init__()
        c = [output_channel // 8, output_channel // 4, output_channel // 2, output_channel]
        self.ConvNet = nn.Sequential(
            nn.Conv2d(input_channel, c[0], 3, 1, 1),  # 0
            nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c[0], c[1], 3, 1, 1),  # 3
            nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c[1], c[2], 3, 1, 1),  # 6
            nn.ReLU(True),
            nn.Conv2d(c[2], c[2], 3, 1, 1),  # 8
            nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[2], c[3], 3, 1, 1, bias=False),  # 11
            nn.BatchNorm2d(c[3]),  # 12
            nn.ReLU(True),
            nn.Conv2d(c[3], c[3], 3, 1, 1, bias=False),  # 14
            nn.BatchNorm2d(c[3]),  # 15
            nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[3], c[3], 2, 1, 0),  # 18
            nn.ReLU(True),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(images)


class ClovaaiBidirectionalLSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(hidden_size * 2, output_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (B, T, input_size)
        recurrent, _ = self.rnn(features)
        return self.linear(recurrent)


class ClovaaiNoneVGGBiLSTMCTC(nn.Module):
    def __init__(self, input_channel: int = 1, output_channel: int = 512, hidden_size: int = 256, num_class: int = 37):
        super().__init__()
        self.FeatureExtraction = ClovaaiVGGFeatureExtractor(input_channel, output_channel)
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))
        self.SequenceModeling = nn.Sequential(
            ClovaaiBidirectionalLSTM(output_channel, hidden_size, hidden_size),
            ClovaaiBidirectionalLSTM(hidden_size, hidden_size, hidden_size),
        )
        self.Prediction = nn.Linear(hidden_size, num_class)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        visual = self.FeatureExtraction(images)
        visual = self.AdaptiveAvgPool(visual.permute(0, 3, 1, 2)).squeeze(3)  # (B, W, C, H) -> (B, W, C)
        contextual = self.SequenceModeling(visual)
        return self.Prediction(contextual.contiguous())


# ---- bgshih/crnn (Torch7), transcribed -----------------------------------------------------------------------------


class Torch7LstmLayer(nn.Module):
    """
    src/LstmLayer.lua: `i2h(x) + h2h(h_prev)` split into H-row blocks (input, forget, output: sigmoid; cell input:
    tanh), `c = f * c_prev + i * g`, `h = o * tanh(c)`, zero initial state; `reverse` runs from the last frame.
    """

    def __init__(self, n_in: int, n_hidden: int, reverse: bool):
        super().__init__()
        self.n_hidden = n_hidden
        self.reverse = reverse
        self.i2h = nn.Linear(n_in, 4 * n_hidden)
        self.h2h = nn.Linear(n_hidden, 4 * n_hidden)

    def forward(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:  # T x (B, n_in)
        batch = frames[0].shape[0]
        cell = frames[0].new_zeros(batch, self.n_hidden)
        hidden = frames[0].new_zeros(batch, self.n_hidden)
        outputs: list[torch.Tensor | None] = [None] * len(frames)
        steps = range(len(frames) - 1, -1, -1) if self.reverse else range(len(frames))
        for step in steps:
            sums = self.i2h(frames[step]) + self.h2h(hidden)
            in_gate, forget_gate, out_gate = torch.sigmoid(sums[:, : 3 * self.n_hidden]).chunk(3, dim=1)
            in_transform = torch.tanh(sums[:, 3 * self.n_hidden :])
            cell = forget_gate * cell + in_gate * in_transform
            hidden = out_gate * torch.tanh(cell)
            outputs[step] = hidden
        return outputs


class Torch7BiRnnJoin(nn.Module):
    """src/BiRnnJoin.lua: `fwdProj(h_fwd) + bwdProj(h_bwd)` at every frame."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.forward_projection = nn.Linear(n_in, n_out)
        self.backward_projection = nn.Linear(n_in, n_out)

    def forward(self, forward_frames, backward_frames):
        return [
            self.forward_projection(f) + self.backward_projection(b) for f, b in zip(forward_frames, backward_frames)
        ]


class Torch7BidirectionalLSTM(nn.Module):
    """config.lua's bidirectionalLSTM: ConcatTable(forward LstmLayer, backward LstmLayer) -> BiRnnJoin."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        super().__init__()
        self.forward_lstm = Torch7LstmLayer(n_in, n_hidden, reverse=False)
        self.backward_lstm = Torch7LstmLayer(n_in, n_hidden, reverse=True)
        self.join = Torch7BiRnnJoin(n_hidden, n_out)

    def forward(self, frames):
        return self.join(self.forward_lstm(frames), self.backward_lstm(frames))

    def torch7_parameters(self) -> list[torch.Tensor]:
        """`parameters()` of the Lua modules: each LstmLayer's i2h then h2h, then the join's forward then backward."""
        modules = (
            self.forward_lstm.i2h,
            self.forward_lstm.h2h,
            self.backward_lstm.i2h,
            self.backward_lstm.h2h,
            self.join.forward_projection,
            self.join.backward_projection,
        )
        return [tensor for module in modules for tensor in (module.weight, module.bias)]


class BgshihCRNN(nn.Module):
    """model/crnn_demo/config.lua's createModel, minus the CUDA copies; input: 0-255 values `(B, 1, 32, W)`."""

    def __init__(self, n_classes: int = 36):
        super().__init__()
        channels = (1, 64, 128, 256, 256, 512, 512, 512)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], _VGG_KERNELS[i], 1, _VGG_PADDINGS[i]) for i in range(7)
        )
        # convRelu(3, true), convRelu(5, true), convRelu(7, true): batch norm after the 3rd, 5th and 7th.
        self.batch_norms = nn.ModuleDict({"3": nn.BatchNorm2d(256), "5": nn.BatchNorm2d(512), "7": nn.BatchNorm2d(512)})
        # cudnn.SpatialMaxPooling(kW, kH, dW, dH, padW, padH) after convolutions 1, 2, 4 and 6.
        self.pools = nn.ModuleDict(
            {
                "1": nn.MaxPool2d(2, 2),
                "2": nn.MaxPool2d(2, 2),
                "4": nn.MaxPool2d((2, 2), (2, 1), (0, 1)),  # (2, 2, 1, 2, 1, 0)
                "6": nn.MaxPool2d((2, 2), (2, 1), (0, 1)),
            }
        )
        self.blstm1 = Torch7BidirectionalLSTM(512, 256, 256)
        self.blstm2 = Torch7BidirectionalLSTM(256, 256, n_classes + 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        hidden = (pixels.float() - 128.0) * (1.0 / 128)  # AddConstant(-128), MulConstant(1 / 128)
        for number, conv in enumerate(self.convs, start=1):
            hidden = conv(hidden)
            if str(number) in self.batch_norms:
                hidden = self.batch_norms[str(number)](hidden)
            hidden = torch.relu(hidden)
            if str(number) in self.pools:
                hidden = self.pools[str(number)](hidden)
        hidden = hidden.reshape(hidden.shape[0], 512, -1).transpose(1, 2)  # View(512, -1), Transpose({2, 3})
        frames = list(hidden.unbind(1))  # SplitTable: T frames of (B, 512)
        frames = self.blstm2(self.blstm1(frames))
        return torch.stack([torch.log_softmax(frame, dim=1) for frame in frames], dim=1)  # (B, T, nClasses + 1)

    def torch7_snapshot(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """`modelState(model)`: `parameters` in module order, and each batch norm's running mean and variance."""
        parameters: list[torch.Tensor] = []
        for number, conv in enumerate(self.convs, start=1):
            parameters += [conv.weight, conv.bias]
            if str(number) in self.batch_norms:
                parameters += [self.batch_norms[str(number)].weight, self.batch_norms[str(number)].bias]
        parameters += self.blstm1.torch7_parameters() + self.blstm2.torch7_parameters()
        bn_vars = [t for bn in self.batch_norms.values() for t in (bn.running_mean, bn.running_var)]
        return [t.detach().clone() for t in parameters], [t.detach().clone() for t in bn_vars]


# ---- weights -------------------------------------------------------------------------------------------------------


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0, output_scale: float = 4.0) -> nn.Module:
    """
    Random weights for every parameter (PyTorch's default initialisation, re-drawn from `seed`) and random batch-norm
    affine parameters and running statistics, so a wrong statistic or a swapped mean/variance shows in the outputs.
    The last Linear is scaled by `output_scale` so class scores are far apart and greedy decoding is not decided by
    rounding. Returns the model in eval mode.
    """
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
            module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) * 1.5 + 0.5)
            module.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=generator)))
        elif isinstance(module, (nn.Conv2d, nn.Linear, nn.LSTM)):
            for parameter in module.parameters(recurse=False):
                fan_in = parameter[0].numel() if parameter.dim() > 1 else 100
                bound = fan_in**-0.5  # PyTorch's default range for weights; biases within +-0.1
                parameter.copy_((torch.rand(parameter.shape, generator=generator) * 2 - 1) * bound)
    last_linear = [module for module in model.modules() if isinstance(module, nn.Linear)][-1]
    last_linear.weight.mul_(output_scale)
    last_linear.bias.mul_(output_scale)
    return model.eval()
