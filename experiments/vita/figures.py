"""ViTa figures: the ablation with CIs and oracle ceilings, and an MAE reconstruction."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxmed import cardiac, core
from jaxmed.core import result_float

ARMS = ("random_init", "image_only", "aligned_image_only", "aligned_finetuned", "scratch", "tabular_only",
        "tabular_logreg", "aligned_fused")


def plot_ablation(results: dict, path: str) -> None:
  """Disease AUROC and LVEF / LVCO R^2 per arm (mean over seeds, bootstrap 95% CI); oracle AUROCs as lines."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  panels = (("disease/auroc/{}", "disease AUROC (logistic probe)"), ("pheno/r2/LVEF/{}", "LVEF R^2 (ridge probe)"),
            ("pheno/r2/LVCO/{}", "LVCO R^2 (ridge probe)"))
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  y = np.arange(len(ARMS))
  for ax, (key, title) in zip(axes, panels):
    v = np.array([result_float(results.get(key.format(a), np.nan)) for a in ARMS])
    ci = np.array([results.get(key.format(a) + "_ci", [np.nan, np.nan]) for a in ARMS], float)
    ax.barh(y, v, xerr=np.abs(np.stack([v - ci[:, 0], ci[:, 1] - v])), color="tab:blue", alpha=0.7, capsize=3)
    ax.set_yticks(y, ARMS if ax is axes[0] else [""] * len(ARMS), fontsize=8)
    ax.set_title(title, fontsize=9)
    if key.startswith("disease"):
      for name, color in (("image", "tab:orange"), ("tabular", "tab:green"), ("joint", "tab:red")):
        o = result_float(results.get(f"oracle/disease_auroc/{name}", np.nan))
        ax.axvline(o, color=color, ls="--", lw=1, label=f"oracle {name} {o:.2f}")
      ax.set_xlim(0.4, 1.0)
      ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.08), ncol=3)
    else:
      ax.set_xlim(min(-0.1, np.nanmin(v) - 0.05), 1.0)
  fig.suptitle("mean over seeds, 95% bootstrap CI; aligned_finetuned and scratch are trained end to end with their "
               "own linear head, not probed", fontsize=8)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=100)
  plt.close(fig)


def plot_reconstruction(config, cine, pred, mask, path) -> None:
  """Input, visible patches and the reconstruction of one test subject at frame 0 (LAX, basal and mid SAX)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  patch = tuple(config.model.patch)
  shape = cine.shape
  recon = np.asarray(cardiac.unpatchify(jnp.asarray(pred)[None], shape, patch))[0]
  m = np.asarray(cardiac.unpatchify(jnp.repeat(jnp.asarray(mask)[None, :, None], int(np.prod(patch)), -1),
                                    shape, patch))[0]
  shown = [0, 3, 3 + (shape[0] - 3) // 2]
  fig, axes = plt.subplots(3, len(shown), figsize=(3 * len(shown), 8))
  for j, s in enumerate(shown):
    for i, (img, title) in enumerate(((cine[s, 0], "input"), (np.where(m[s, 0] > 0, np.nan, cine[s, 0]), "visible"),
                                      (np.where(m[s, 0] > 0, recon[s, 0], cine[s, 0]), "reconstruction"))):
      axes[i, j].imshow(img, cmap="gray", vmin=0, vmax=1)
      axes[i, j].set_title(f"{'LAX' if s < 3 else 'SAX'} {s} frame 0: {title}", fontsize=8)
      axes[i, j].axis("off")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=100)
  plt.close(fig)
