"""ViTa: cardiac cine (3D+T, SAX + LAX) and tabular foundation representation (Zhang et al. 2025)."""

from jaxmed.core import result_float

TITLE = "ViTa: cine MAE + image-tabular alignment, phenotype / disease / segmentation heads (Zhang et al. 2025)"
HEADLINE = ("mae/recon_mse", "pheno/r2/LVEF/vita", "pheno/r2/LVEF/scratch", "disease/auroc/vita",
            "disease/auroc/image_only", "seg/dice/vita")


def results_table(results: dict) -> str:
  """Markdown: phenotype MAE / R^2 per setting, disease AUROC per setting, segmentation Dice."""
  from jaxmed.synth.heart import PHENOTYPE_UNITS, PHENOTYPES
  g = lambda k: result_float(results.get(k, float("nan")))  # noqa: E731
  settings = ("vita", "image_only", "scratch")
  lines = [f"MAE masked-patch MSE on test subjects: {g('mae/recon_mse'):.4f} (predicting the training mean: "
           f"{g('mae/mean_baseline_mse'):.4f}; the training mean image at each position: "
           f"{g('mae/position_mean_baseline_mse'):.4f}).", "",
           "| phenotype | " + " | ".join(f"MAE {s}" for s in settings) + " | " + " | ".join(f"R^2 {s}" for s in settings)
           + " |", "|---|" + "---|" * 6]
  for p in PHENOTYPES:
    lines.append(f"| {p} ({PHENOTYPE_UNITS[p]}) | " + " | ".join(f"{g(f'pheno/mae/{p}/{s}'):.2f}" for s in settings)
                 + " | " + " | ".join(f"{g(f'pheno/r2/{p}/{s}'):.3f}" for s in settings) + " |")
  lines += ["", "| disease | vita (image + tabular) | image_only | tabular_only | scratch |", "|---|---|---|---|---|",
            "| AUROC | " + " | ".join(f"{g(f'disease/auroc/{s}'):.3f}" for s in
                                     ("vita", "image_only", "tabular_only", "scratch")) + " |",
            "| accuracy | " + " | ".join(f"{g(f'disease/accuracy/{s}'):.3f}" for s in
                                        ("vita", "image_only", "tabular_only", "scratch")) + " |", "",
            f"Segmentation Dice (mean of LV, myocardium, RV): vita {g('seg/dice/vita'):.3f} "
            f"(LV {g('seg/dice/lv/vita'):.3f}, myo {g('seg/dice/myo/vita'):.3f}, RV {g('seg/dice/rv/vita'):.3f}); "
            f"scratch {g('seg/dice/scratch'):.3f}. Test prevalence of the disease: "
            f"{g('disease/prevalence/test'):.2f}."]
  return "\n".join(lines) + "\n"
