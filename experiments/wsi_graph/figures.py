"""WSI graph figures: Integrated Gradients per region (``ig.png``) and cross-validation bars (``cv.png``)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxmed import core, pathology


def plot_cv(results: dict, models: tuple[str, ...], path: str) -> None:
  """Bars of mean ± sd over CV folds per model and metric, with the oracle (ceiling) and floor where known."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  shown = ("stage_acc", "stage_auroc", "cindex")
  fig, ax = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.6))
  for a, metric in zip(ax, shown):
    shown_models = [m for m in models if f"cv/{m}/{metric}" in results]
    means = [results[f"cv/{m}/{metric}"] for m in shown_models]
    sds = [results[f"cv_sd/{m}/{metric}"] for m in shown_models]
    a.bar(range(len(shown_models)), means, yerr=sds, capsize=4,
          color=[f"C{'0912'[models.index(m)]}" for m in shown_models])
    a.set_xticks(range(len(shown_models)),
                 [m.replace("region_graph_", "region\n").replace("_", "\n") for m in shown_models],
                 fontsize=8)
    if f"oracle/{metric}" in results:
      a.axhline(results[f"oracle/{metric}"], color="k", ls="--", lw=1, label="oracle (true variables)")
    if metric == "stage_acc" and "oracle_burden_only/stage_acc" in results:
      a.axhline(results["oracle_burden_only/stage_acc"], color="grey", ls="-.", lw=1, label="oracle, burden only")
    if metric == "stage_acc" and "floor/stage_acc" in results:
      a.axhline(results["floor/stage_acc"], color="r", ls=":", lw=1, label="floor (majority stage)")
    a.set_ylim(0.3 if metric == "stage_acc" else 0.5, 1.0)
    a.set_title(metric.replace("_", " "))
    if metric == "stage_acc":
      a.legend(fontsize=7, loc="upper right")
  fig.suptitle(f"patient-grouped {results['cv/folds']}-fold CV x {results['cv/repeats']}: mean ± sd over folds",
               fontsize=9)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=100)
  plt.close(fig)


def explain(model, params, test, steps: int, num_slides: int) -> dict:
  """IG of the predicted stage's logit for the first test slides, baseline = mean training features (0 after
  standardisation) on the real nodes, with the coarse partition held at the input's."""
  node_attr, feat_attr, errs = [], np.zeros(len(pathology.FEATURE_NAMES)), []
  for i in range(min(num_slides, len(test["x"]))):
    g = pathology.unstack_graph({k: jnp.asarray(test[k][i]) for k in ("x", "area", "pos", "senders", "receivers",
                                                                      "n_node", "n_edge")})
    out = model.apply(params, g)
    target = int(jnp.argmax(out["logits"][0]))
    x = g.nodes["x"]
    baseline = jnp.zeros_like(x)

    def f(v, g=g, keep=out["keep"], target=target):
      return model.apply(params, g, v, keep=keep)["logits"][0, target]

    attr = np.asarray(pathology.integrated_gradients(f, x, baseline, steps=steps))
    n = int(test["n_node"][i][0])
    gap = float(f(x) - f(baseline))
    errs.append(abs(attr.sum() - gap) / max(abs(gap), 1e-8))
    node_attr.append(attr[:n].sum(1))
    feat_attr += np.abs(attr[:n]).sum(0)
  order = np.argsort(-feat_attr)
  return {"node_attr": node_attr, "completeness_rel_err": float(np.max(errs)),
          "top_features": [(pathology.FEATURE_NAMES[k], float(feat_attr[k] / feat_attr.sum())) for k in order]}


def plot_ig(cache_paths, ig, slides, path):
  """Per slide: the thumbnail, the SLIC regions, and IG per region; read from the cache one slide at a time."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from skimage.segmentation import find_boundaries

  n = len(cache_paths)
  fig, ax = plt.subplots(n, 3, figsize=(11, 3.6 * n), squeeze=False)
  for i, (cp, s) in enumerate(zip(cache_paths, slides)):
    with np.load(cp) as z:
      labels, rgb = z["region/labels"], z["thumbnail"]
    ax[i, 0].imshow(rgb)
    latent = s.get("latent")
    extra = (f" (burden {latent['burden']:.2f}, {'invasive' if latent['invasive'] else 'non-invasive'}, "
             f"immune {latent['immune']:.2f})") if latent else ""
    ax[i, 0].set_title(f"{s['name']}: stage {s['stage'] + 1}{extra}", fontsize=8)
    seg = rgb.copy()
    seg[find_boundaries(labels)] = (0, 0, 0)
    ax[i, 1].imshow(seg)
    ax[i, 1].set_title(f"{labels.max()} SLIC regions")
    heat = pathology.paint_regions(labels, ig["node_attr"][i])
    lim = np.nanmax(np.abs(heat)) or 1.0
    ax[i, 2].imshow(rgb)
    im = ax[i, 2].imshow(heat, cmap="coolwarm", vmin=-lim, vmax=lim, alpha=0.6)
    ax[i, 2].set_title("IG per region (predicted stage)")
    fig.colorbar(im, ax=ax[i, 2], fraction=0.046)
    for a in ax[i]:
      a.axis("off")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=90)
  plt.close(fig)
