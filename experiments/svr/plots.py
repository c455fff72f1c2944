"""The SVR demo's figures: orthogonal views of the reconstructions, convergence curves and the motion sweep."""

from __future__ import annotations

import os

import numpy as np

from experiments.svr import SETTINGS
from jaxmed import core


def plot_views(subject, workdir, results, path):
  """Ground truth and each setting's reconstruction of held-out subject 0 (seed 0), three orthogonal views."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  gt, m = subject["phantom"]["volume"], subject["phantom"]["mask"]
  vols = [("ground truth", gt)] + [(s, np.load(os.path.join(workdir, f"volume_{s}.npy"))) for s in SETTINGS
                                   if os.path.exists(os.path.join(workdir, f"volume_{s}.npy"))]
  c = np.array(gt.shape) // 2
  fig, axes = plt.subplots(3, len(vols), figsize=(2.6 * len(vols), 7.6))
  for j, (name, v) in enumerate(vols):
    v = np.clip((v - v[m].min()) / (np.ptp(v[m]) + 1e-8), 0, 1)
    for i, view in enumerate((v[c[0]], v[:, c[1]], v[:, :, c[2]])):
      axes[i, j].imshow(np.rot90(view), cmap="gray", vmin=0, vmax=1)
      axes[i, j].axis("off")
    axes[0, j].set_title(name if j == 0 else f"{name}\n{results[f'psnr/{name}']:.1f} dB (mean)", fontsize=9)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)


def plot_curves(records, results, path):
  """Left: PSNR vs step of both inits (thin: each subject x seed; thick: the mean). Right: the motion sweep."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.6))
  for setting, color in (("random_init", "tab:blue"), ("meta_init", "tab:orange")):
    curves = [r[f"history/{setting}"] for r in records]
    for h in curves:
      ax.plot([x["step"] for x in h], [x["psnr"] for x in h], color=color, alpha=0.25, lw=0.8)
    n = min(len(h) for h in curves)
    ax.plot([x["step"] for x in curves[0][:n]], np.mean([[x["psnr"] for x in h[:n]] for h in curves], 0),
            color=color, lw=2.2, label=f"{setting} (mean)")
  for setting, color in (("nocorr", "tab:gray"), ("oracle", "tab:green")):
    if f"psnr/{setting}" in results:
      ax.axhline(results[f"psnr/{setting}"], color=color, ls="--", lw=1, label=f"{setting} (final, mean)")
  ax.set_xlabel("step")
  ax.set_ylabel("PSNR in mask (dB)")
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  levels = sorted({int(k.split("/")[1][len("motion_"):-3]) for k in results if k.startswith("psnr/motion_")})
  for setting, color in (("random_init", "tab:blue"), ("meta_init", "tab:orange")):
    bx.plot(levels, [results[f"psnr/motion_{lv}deg/{setting}"] for lv in levels], "o-", color=color, label=setting)
  bx.set_xlabel("max rotation (deg), random walk with jumps")
  bx.set_ylabel("PSNR in mask (dB)")
  bx.legend(fontsize=7)
  bx.grid(alpha=0.3)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)
