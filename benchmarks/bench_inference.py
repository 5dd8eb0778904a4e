"""Inference throughput of hf_crnn's CRNNForTextRecognition against a plain torch.nn CRNN of the same layers.

Both models hold identical weights (the plain one is loaded from ours), run in eval mode under
`torch.inference_mode()` on 32x100 inputs, and are timed alternately in the same process so machine noise hits both
alike; the ratio column is what the target (>= 0.95x) is about. Peak memory is how much one forward pass raises the
peak resident set of a fresh subprocess (so the two models do not share a high-water mark).

    python benchmarks/bench_inference.py [--batch-sizes 1 32 128] [--rounds 5] [--threads N]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from hf_crnn import CRNNConfig, CRNNForTextRecognition


class PlainCRNN(nn.Module):
    """The paper's CRNN written directly with torch.nn (crnn.pytorch style), no masking or HF wrapping."""

    def __init__(self, num_classes: int = 37, hidden: int = 256):
        super().__init__()
        channels = [1, 64, 128, 256, 256, 512, 512, 512]
        kernels = [3, 3, 3, 3, 3, 3, 2]
        paddings = [1, 1, 1, 1, 1, 1, 0]
        pools = {0: ((2, 2), (2, 2), (0, 0)), 1: ((2, 2), (2, 2), (0, 0)), 3: ((2, 2), (2, 1), (0, 1)), 5: ((2, 2), (2, 1), (0, 1))}
        layers = []
        for i in range(7):
            layers.append(nn.Conv2d(channels[i], channels[i + 1], kernels[i], 1, paddings[i]))
            if i in (2, 4, 6):
                layers.append(nn.BatchNorm2d(channels[i + 1]))
            layers.append(nn.ReLU(inplace=True))
            if i in pools:
                layers.append(nn.MaxPool2d(*pools[i]))
        self.cnn = nn.Sequential(*layers)
        self.lstm1 = nn.LSTM(512, hidden, bidirectional=True, batch_first=True)
        self.proj1 = nn.Linear(2 * hidden, hidden)
        self.lstm2 = nn.LSTM(hidden, hidden, bidirectional=True, batch_first=True)
        self.classifier = nn.Linear(2 * hidden, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.cnn(images).squeeze(2).transpose(1, 2)
        features = self.proj1(self.lstm1(features)[0])
        return self.classifier(self.lstm2(features)[0])

    def load_from(self, model: CRNNForTextRecognition) -> "PlainCRNN":
        convs = [m for m in self.cnn if isinstance(m, nn.Conv2d)]
        norms = iter(m for m in self.cnn if isinstance(m, nn.BatchNorm2d))
        for conv, layer in zip(convs, model.crnn.conv_layers):
            conv.load_state_dict(layer.conv.state_dict())
            if layer.batch_norm is not None:
                next(norms).load_state_dict(layer.batch_norm.state_dict())
        self.lstm1.load_state_dict(model.crnn.lstm_layers[0].lstm.state_dict())
        self.proj1.load_state_dict(model.crnn.lstm_layers[0].projection.state_dict())
        self.lstm2.load_state_dict(model.crnn.lstm_layers[1].lstm.state_dict())
        self.classifier.load_state_dict(model.classifier.state_dict())
        return self


def build_models():
    torch.manual_seed(0)
    ours = CRNNForTextRecognition(CRNNConfig()).eval()
    plain = PlainCRNN().load_from(ours).eval()
    return {"plain torch.nn": lambda x: plain(x), "hf_crnn": lambda x: ours(pixel_values=x).logits}, ours, plain


def images_per_second(run, batch: torch.Tensor, min_seconds: float) -> float:
    iterations, start = 0, time.perf_counter()
    while True:
        run(batch)
        iterations += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return iterations * batch.shape[0] / elapsed


def forward_peak_memory_mb(name: str, batch_size: int) -> float:
    """Growth of the peak resident set (MB) over one forward pass, in a fresh process with both models built."""
    code = (
        "import resource, sys, torch\n"
        "sys.path.insert(0, %r)\n"
        "from bench_inference import build_models\n"
        "runs, _, _ = build_models()\n"
        "images = torch.randn(%d, 1, 32, 100)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "with torch.inference_mode():\n"
        "    runs[%r](images)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n"
    ) % (os.path.dirname(os.path.abspath(__file__)), batch_size, name)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 128])
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds per batch size")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum seconds per timing")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    runs, ours, plain = build_models()
    check = torch.randn(2, 1, 32, 100)
    with torch.inference_mode():
        max_diff = (runs["plain torch.nn"](check) - runs["hf_crnn"](check)).abs().max().item()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"max |logit difference| between the two models: {max_diff:.2e}")

    rows = []
    for batch_size in args.batch_sizes:
        batch = torch.randn(batch_size, 1, 32, 100)
        speeds = {name: [] for name in runs}
        with torch.inference_mode():
            for run in runs.values():
                run(batch)  # warm-up
            for _ in range(args.rounds):
                for name, run in runs.items():
                    speeds[name].append(images_per_second(run, batch, args.seconds))
        plain_speed = statistics.median(speeds["plain torch.nn"])
        ours_speed = statistics.median(speeds["hf_crnn"])
        rows.append(
            {
                "batch": batch_size,
                "plain_images_per_s": round(plain_speed, 1),
                "hf_crnn_images_per_s": round(ours_speed, 1),
                "ratio": round(ours_speed / plain_speed, 3),
                "plain_forward_mb": round(forward_peak_memory_mb("plain torch.nn", batch_size), 1),
                "hf_crnn_forward_mb": round(forward_peak_memory_mb("hf_crnn", batch_size), 1),
            }
        )

    header = "| batch | plain torch.nn img/s | hf_crnn img/s | ratio | plain forward peak MB | hf_crnn forward peak MB |"
    print(header)
    print("|" + "---|" * 6)
    for row in rows:
        print("| {batch} | {plain_images_per_s} | {hf_crnn_images_per_s} | {ratio} | {plain_forward_mb} | {hf_crnn_forward_mb} |".format(**row))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
