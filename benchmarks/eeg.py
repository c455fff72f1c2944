"""Benchmark: EEG feature-extraction throughput (windows/s) per model, and jitted JAX EEGNet vs PyTorch EEGNet.

  python benchmarks/eeg.py [--json PATH] [--batch 32] [--seconds 10] [--dim 64] [--depth 3] [--repeats 5]

Every model is the demo-preset width, jitted, on 19-channel windows at
100 Hz; the general models return frozen features (OTiS with the demo's
50-sample patches and joint attention over 19 x 20 tokens, the TimesFM-style
decoder over every channel), EEGNet and BIOT their logits. ``--json PATH``
writes ``{model}/windows_per_s`` and ``{model}/ratio_vs_eegnet``.
The ratio is against EEGNet, the cheapest specialised model. Where torch is
installed, the same EEGNet-8,2 (our own PyTorch definition below, braindecode's
layer order: temporal conv, BN, depthwise spatial conv, BN, ELU, pool,
separable conv, BN, ELU, pool, dense) runs in eval mode under
``torch.inference_mode`` on the same inputs, and the JAX / PyTorch ratio is
printed. Compilation and the first call are excluded.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from figures import write_figures
from jaxmed import eeg


def throughput(fn, x, repeats):
  """Windows/s of ``fn`` on ``x`` after one warm-up call (JAX outputs are waited for)."""
  np.asarray(fn(x))
  t0 = time.perf_counter()
  for _ in range(repeats):
    out = fn(x)
  np.asarray(out)
  return len(x) * repeats / (time.perf_counter() - t0)


def torch_eegnet(channels, samples, outputs):
  import torch
  from torch import nn

  class TorchEEGNet(nn.Module):
    def __init__(self):
      super().__init__()
      self.net = nn.Sequential(
          nn.Conv2d(1, 8, (1, 50), padding="same", bias=False), nn.BatchNorm2d(8),
          nn.Conv2d(8, 16, (channels, 1), groups=8, bias=False), nn.BatchNorm2d(16), nn.ELU(),
          nn.AvgPool2d((1, 4)), nn.Dropout(0.25),
          nn.Conv2d(16, 16, (1, 16), padding="same", groups=16, bias=False), nn.Conv2d(16, 16, 1, bias=False),
          nn.BatchNorm2d(16), nn.ELU(), nn.AvgPool2d((1, 8)), nn.Dropout(0.25), nn.Flatten(),
          nn.Linear(16 * (samples // 32), outputs))

    def forward(self, x):
      return self.net(x[:, None])

  model = TorchEEGNet().eval()

  def run(x):
    with torch.inference_mode():
      return model(torch.from_numpy(x)).numpy()
  return run


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--json", default="", help="write the figures here as JSON")
  ap.add_argument("--batch", type=int, default=32)
  ap.add_argument("--seconds", type=float, default=10.0)
  ap.add_argument("--dim", type=int, default=64)
  ap.add_argument("--depth", type=int, default=3)
  ap.add_argument("--repeats", type=int, default=5)
  args = ap.parse_args()
  t = int(args.seconds * 100)
  x = np.random.default_rng(0).standard_normal((args.batch, 19, t)).astype(np.float32) * 20
  key = jax.random.PRNGKey(0)
  models = {"eegnet": eeg.EEGNet(2, 50), "biot": eeg.BIOT(2, 100, 50, args.dim, 2, 4, 19)}
  fns = {}
  for name, m in models.items():
    v = m.init(key, x[:2])
    fns[name] = jax.jit(lambda xb, m=m, v=v: m.apply(v, xb))
  for name, enc in (("otis", eeg.OTiSEncoder(50, args.dim, args.depth, 4, 19)),
                    ("timesfm", eeg.TimesFMDecoder(32, 64, args.dim, args.depth, 4, num_quantiles=0))):
    clf = eeg.FoundationClassifier(enc, 2)
    v = clf.init(key, x[:1])
    fns[name] = jax.jit(lambda xb, f=eeg.features_fn(enc), v={"params": v["params"]["encoder"]}: f(v, xb))
  rates = {name: throughput(fn, x, args.repeats) for name, fn in fns.items()}
  print(f"# {jax.devices()[0].device_kind}, batch {args.batch}, {args.seconds:g} s windows, 19 channels, 100 Hz")
  figures = {}
  for name in ("otis", "timesfm", "eegnet", "biot"):
    print(f"{name}_features: {rates[name]:.1f} windows/s ({rates[name] / rates['eegnet']:.2f}x vs eegnet)")
    figures.update({f"{name}/windows_per_s": rates[name], f"{name}/ratio_vs_eegnet": rates[name] / rates["eegnet"]})
  write_figures(args.json, figures)
  try:
    torch_run = torch_eegnet(19, t, 2)
  except ImportError:
    print("eegnet_jax_vs_torch: skipped (torch is not installed; pip install torch to compare)")
    return
  rate_torch = throughput(torch_run, x, args.repeats)
  print(f"eegnet_torch: {rate_torch:.1f} windows/s; eegnet_jax: {rates['eegnet']:.1f} windows/s "
        f"({rates['eegnet'] / rate_torch:.2f}x vs torch)")
  figures.update({"eegnet_torch/windows_per_s": rate_torch, "eegnet_jax_vs_torch/ratio": rates["eegnet"] / rate_torch})
  write_figures(args.json, figures)


if __name__ == "__main__":
  main()
