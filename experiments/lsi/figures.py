"""Figures of the LSI experiment: typicality grids, mislabel detection, class-wise LSI."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sklearn.metrics  # noqa: E402

from jaxmed import core  # noqa: E402


def plot_typicality(by_dataset: dict, per_class: int, path: str) -> None:
  """Per class: the ``per_class`` lowest-LSI (most typical) and highest-LSI (most atypical) pool images.

  ``by_dataset``: name -> (data dict with ``pool_images``/``pool_labels``/``class_names``, LSI ``[N]``).
  """
  fig = plt.figure(figsize=(4.2 * len(by_dataset), 0.55 * max(len(d["class_names"]) for d, _ in
                                                                  by_dataset.values()) + 1.2))
  outer = fig.add_gridspec(1, len(by_dataset), wspace=0.35)
  for col, (name, (data, lsi)) in enumerate(by_dataset.items()):
    names = data["class_names"]
    grid = outer[col].subgridspec(len(names), 2 * per_class + 1, wspace=0.05, hspace=0.05)
    for ci, cname in enumerate(names):
      idx = np.where(data["pool_labels"] == ci)[0]
      if len(idx) == 0:
        continue
      ranked = idx[np.argsort(lsi[idx])]
      picks = list(ranked[:per_class]) + [None] + list(ranked[::-1][:per_class][::-1])
      for j, i in enumerate(picks):
        ax = fig.add_subplot(grid[ci, j])
        ax.set_xticks([])
        ax.set_yticks([])
        if i is None:
          ax.axis("off")
          continue
        ax.imshow(data["pool_images"][i, ..., 0], cmap="gray")
        if j == 0:
          ax.set_ylabel(cname, rotation=0, ha="right", va="center", fontsize=7)
        if ci == 0 and j == 0:
          ax.set_title(f"{name}: lowest LSI", fontsize=8, loc="left")
        if ci == 0 and j == len(picks) - 1:
          ax.set_title("highest LSI", fontsize=8, loc="right")
  core.save_figure(fig, path, dpi=110, bbox_inches="tight")
  plt.close(fig)


def plot_mislabel(noisy: dict, flipped: np.ndarray, results: dict, path: str) -> None:
  """ROC curves of each score for finding flipped labels, and LSI of flipped vs clean samples."""
  fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(14, 4))
  curves = {"LSI (full)": noisy["lsi/full"], "loss": noisy["loss"], "EL2N": noisy["el2n"], "GraNd": noisy["grand"],
            "self-influence": noisy["influence"], "data map (-conf.)": -noisy["datamap_confidence"]}
  for label, s in curves.items():
    fpr, tpr, _ = sklearn.metrics.roc_curve(flipped, s)
    ax0.plot(fpr, tpr, label=f"{label} {sklearn.metrics.auc(fpr, tpr):.3f}")
  ax0.plot([0, 1], [0, 1], "k:", lw=0.8)
  ax0.set(xlabel="false positive rate", ylabel="true positive rate", title="finding flipped labels (AUROC)")
  ax0.legend(fontsize=7)
  lsi = noisy["lsi/full"]
  bins = np.logspace(np.log10(max(lsi.min(), 1e-12)), np.log10(lsi.max()), 40)
  ax1.hist(lsi[~flipped], bins=bins, alpha=0.6, label="clean label")
  ax1.hist(lsi[flipped], bins=bins, alpha=0.6, label="flipped label")
  ax1.set(xscale="log", xlabel="LSI (nats)", ylabel="samples", title="LSI on the noisy digits pool")
  ax1.legend(fontsize=8)
  ax2.loglog(noisy["lsi/full"], noisy["lsi/diag"], ".", ms=2, label=f"diag, rho={results['spearman/diag_full']:.3f}")
  ax2.loglog(noisy["lsi/full"], noisy["lsi/kfac"], ".", ms=2, label=f"KFAC, rho={results['spearman/kfac_full']:.3f}")
  ax2.set(xlabel="LSI, full GGN", ylabel="LSI, other structure", title="structure agreement")
  ax2.legend(fontsize=8)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)


def plot_classwise(by_dataset: dict, path: str) -> None:
  """Box plots of LSI per class on the clean pools (log scale), one panel per dataset."""
  fig, axes = plt.subplots(1, len(by_dataset), figsize=(6 * len(by_dataset), 3.6), sharey=True)
  for ax, (name, (data, lsi)) in zip(np.atleast_1d(axes), by_dataset.items()):
    groups = [lsi[data["pool_labels"] == c] for c in range(len(data["class_names"]))]
    ax.boxplot(groups, showfliers=True, flierprops=dict(ms=2))
    ax.set_xticks(range(1, len(groups) + 1), data["class_names"], rotation=45, fontsize=7)
    ax.set(yscale="log", title=f"{name}: LSI per class (mean {lsi.mean():.2e})", ylabel="LSI (nats)")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)
