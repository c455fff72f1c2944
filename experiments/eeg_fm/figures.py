"""The EEG study's figures: relevance topomaps, the context-length curve, event confusion matrices."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from jaxmed import core, eeg  # noqa: E402
from jaxmed.synth import eeg as synth_eeg  # noqa: E402


def topomaps(maps: dict, path: str) -> None:
  """Mean IG relevance per electrode for each seizure model, next to where seizures were injected."""
  eeg.plot_topomaps(maps, synth_eeg.CHANNELS, path)


def context_curve(results: dict, seconds, path: str) -> None:
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
  for ax, (task, label) in zip(axes, (("age", "age MAE (years), lower is better"),
                                      ("seizure", "seizure AUROC"))):
    for model in ("otis", "timesfm"):
      ys = [results.get(f"context/{task}/{model}/{s:g}", np.nan) for s in seconds]
      ax.plot(list(seconds), ys, "o-", label=model)
    ax.set_xlabel("context (s)")
    ax.set_ylabel(label)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(list(seconds), [f"{s:g}" for s in seconds])
    ax.legend(fontsize=8)
  fig.suptitle("Linear probe on frozen general-model features vs context length", fontsize=10)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)


def confusions(appliers: dict, windows: dict, path: str) -> None:
  """Row-normalised confusion matrices of the TUEV-like event task for every trained event model."""
  from experiments.eeg_fm.train import batched
  models = [m for (m, t) in appliers if t == "events"]
  y = windows["test"]["y"]
  fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models), 3.3), squeeze=False)
  for ax, m in zip(axes[0], models):
    pred = batched(appliers[(m, "events")], windows["test"]["x"]).argmax(-1)
    cm = confusion_matrix(y, pred, labels=range(len(synth_eeg.EVENT_CLASSES))).astype(float)
    cm /= np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(cm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(6), synth_eeg.EVENT_CLASSES, rotation=60, fontsize=7)
    ax.set_yticks(range(6), synth_eeg.EVENT_CLASSES, fontsize=7)
    ax.set_title(m, fontsize=9)
    for i in range(6):
      for j in range(6):
        if cm[i, j] > 0.05:
          ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=6,
                  color="white" if cm[i, j] > 0.5 else "black")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)
