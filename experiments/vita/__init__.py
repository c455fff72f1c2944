"""ViTa: cardiac cine (3D+T, SAX + LAX) and tabular foundation representation (Zhang et al. 2025)."""

from jaxmed.core import result_float

TITLE = "ViTa: cine MAE + image-tabular alignment; probes, fine-tuning and ablations one factor at a time"
HEADLINE = ("oracle/disease_auroc/joint", "disease/auroc/image_only", "disease/auroc/aligned_image_only",
            "disease/auroc/aligned_fused", "disease/auroc/tabular_logreg", "pheno/r2/LVEF/image_only",
            "seg/dice/finetuned")
ARMS = ("random_init", "image_only", "aligned_image_only", "aligned_fused", "tabular_only", "tabular_logreg",
        "aligned_finetuned", "scratch")


def results_table(results: dict) -> str:
  """Markdown: oracle ceilings, then per arm disease AUROC and LVEF / LVCO R^2 with CIs, MLP heads, segmentation."""
  g = lambda k: result_float(results.get(k, float("nan")))  # noqa: E731

  def ci(k):
    lo, hi = results.get(k + "_ci", [float("nan")] * 2)
    return f"{g(k):.3f} [{lo:.3f}, {hi:.3f}]"

  lines = [f"Oracle disease AUROC from the generating variables: image {g('oracle/disease_auroc/image'):.3f}, "
           f"tabular {g('oracle/disease_auroc/tabular'):.3f}, joint {g('oracle/disease_auroc/joint'):.3f}; LVCO R^2 "
           f"image {g('oracle/pheno_r2/LVCO/image'):.3f}, tabular {g('oracle/pheno_r2/LVCO/tabular'):.3f}, joint "
           f"{g('oracle/pheno_r2/LVCO/joint'):.3f}. "
           f"Test positives: {g('disease/positives/test'):.0f}; seeds: {g('num_seeds'):.0f}.", "",
           "| arm | disease AUROC | LVEF R^2 | LVCO R^2 | LVEDV R^2 | AUROC, MLP head | LVEF R^2, MLP head |",
           "|---|---|---|---|---|---|---|"]
  for a in ARMS:
    mlp = (f"{g(f'disease/auroc_mlp/{a}'):.3f} | {g(f'pheno/r2_mlp/LVEF/{a}'):.3f}"
           if f"disease/auroc_mlp/{a}" in results else "- | -")
    lines.append(f"| {a} | {ci(f'disease/auroc/{a}')} | {ci(f'pheno/r2/LVEF/{a}')} | {ci(f'pheno/r2/LVCO/{a}')} | "
                 f"{g(f'pheno/r2/LVEDV/{a}'):.3f} | {mlp} |")
  lines += ["", f"MAE test MSE on every patch {g('mae/mse_all'):.4f} (masked patches {g('mae/mse_masked'):.4f}); "
            f"training-mean image at each position {g('mae/position_mean_baseline_mse_all'):.4f}, global mean "
            f"{g('mae/mean_baseline_mse_all'):.4f}.",
            f"Segmentation Dice (mean of LV, myocardium, RV) on the MAE encoder: frozen {g('seg/dice/frozen'):.3f}, "
            f"fine-tuned {g('seg/dice/finetuned'):.3f}."]
  return "\n".join(lines) + "\n"
