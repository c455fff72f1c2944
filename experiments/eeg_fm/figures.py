"""The EEG study's figures: relevance topomaps, context-length curve, headline with CIs, event confusions."""

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


def _ci(results: dict, key: str) -> tuple[float, float, float]:
  v = core.result_float(results.get(key, np.nan))
  lo, hi = results.get(key + "_ci", [np.nan, np.nan])
  return v, core.result_float(lo), core.result_float(hi)


def context_curve(results: dict, seconds, path: str) -> None:
  """Linear-probe age MAE and seizure AUROC of both general models against context length, with 95% CIs."""
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
  for ax, (task, metric, label) in zip(axes, (("age", "mae", "age MAE (years, per subject), lower is better"),
                                              ("seizure", "auroc", "seizure AUROC"))):
    for k, model in enumerate(("otis", "timesfm")):
      v = np.array([_ci(results, f"context/{s:g}/{task}/{metric}/{model}") for s in seconds])
      x = np.array(seconds, float) * (1 + 0.03 * (k - 0.5))
      ax.errorbar(x, v[:, 0], yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], fmt="o-", capsize=3, label=model)
    ax.set_xlabel("context (s)")
    ax.set_ylabel(label, fontsize=8)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(list(seconds), [f"{s:g}" for s in seconds])
    ax.legend(fontsize=8)
  fig.suptitle("Linear probe on frozen general-model features vs context length (mean over seeds, 95% CI)",
               fontsize=9)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)


def headline(results: dict, path: str) -> None:
  """Seizure AUROC and per-subject age MAE of every model x protocol with 95% CIs, between the untrained OTiS
  floor and the oracle ceiling (the demo's evidence in one picture)."""
  from experiments.eeg_fm import ROWS
  rows = [r for r in ROWS if r[0] != "chance"]
  fig, axes = plt.subplots(1, 2, figsize=(10, 0.32 * len(rows) + 1.6))
  for ax, (task, metric, label) in zip(axes, (("seizure", "auroc", "seizure AUROC (window, subject bootstrap)"),
                                              ("age", "mae", "age MAE in years (per subject)"))):
    v = np.array([_ci(results, f"{task}/{metric}/{m}/{p}") for m, p in rows])
    y = np.arange(len(rows))[::-1]
    ax.errorbar(v[:, 0], y, xerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], fmt="o", capsize=3, color="C0")
    o = _ci(results, f"{task}/{metric}/oracle")
    ax.axvspan(o[1], o[2], color="C2", alpha=0.2)
    ax.axvline(o[0], color="C2", label="oracle (generator truth)")
    ax.set_yticks(y, [f"{m} / {p}" for m, p in rows], fontsize=8)
    ax.set_xlabel(label, fontsize=8)
    ax.legend(fontsize=7, loc="lower left" if metric == "auroc" else "lower right")
  fig.suptitle("EEG demo: mean over seeds with 95% subject-bootstrap CIs", fontsize=9)
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
