"""Slice-to-volume reconstruction with INRs and a Reptile meta-learned initialisation (MetaSVR)."""

import math

from jaxmed.core import result_float

TITLE = "INR slice-to-volume reconstruction with Reptile initialisation (Dannecker et al. 2025)"
HEADLINE = ("psnr/nocorr", "psnr/random_init", "psnr/meta_init", "motion_err_deg/random_init", "outlier_auroc",
            "steps_to_target/meta_init")
SETTINGS = ("nocorr", "random_init", "meta_init")


def results_table(results: dict) -> str:
  """Markdown table: one row per setting (the tour writes it to the docs)."""
  cols = ("psnr", "ssim", "motion_err_deg", "motion_err_mm", "steps_to_target")
  lines = ["| setting | PSNR (dB) | SSIM | rotation error (deg) | translation error (mm) | steps to target |",
           "|---|---|---|---|---|---|"]
  for s in SETTINGS:
    cells = []
    for c in cols:
      v = results.get(f"{c}/{s}")
      cells.append("–" if v is None else (f"{v:.0f}" if c == "steps_to_target" else
                                         f"{v:.3f}" if c == "ssim" else f"{v:.2f}"))
    lines.append(f"| {s} | " + " | ".join(cells) + " |")
  lines.append("")
  auroc = {k: results.get(f"outlier_auroc{k}", float("nan")) for k in ("", "/informative", "/raw_sigma")}
  lines.append(f"Outlier AUROC (random init) of the learned slice sigma on the volume's scale (sigma / scale): "
               f"{auroc['']:.3f} over slices with brain pixels, {auroc['/informative']:.3f} over informative "
               f"slices; of the raw sigma: {auroc['/raw_sigma']:.3f}; "
               f"before correction: rotation {results.get('motion_err_deg/nocorr', float('nan')):.2f} deg, "
               f"translation {results.get('motion_err_mm/nocorr', float('nan')):.2f} mm.")
  lines.append("")
  clean = [f"{s} {results.get(f'motion_err_deg/{s}/clean', float('nan')):.2f} deg / "
           f"{results.get(f'motion_err_mm/{s}/clean', float('nan')):.2f} mm" for s in SETTINGS]
  lines.append("Motion error over the clean (uncorrupted) informative slices only: " + ", ".join(clean) + ".")
  lines.append("")
  per = sorted(k for k in results if k.startswith("steps_to_target/meta_init/subject_"))
  fmt = lambda v: "never" if math.isnan(result_float(v)) else f"{result_float(v):.0f}"  # noqa: E731
  lines.append("Steps to the random-init final PSNR, per held-out subject (random init / meta init): "
               + ", ".join(f"{fmt(results.get(k.replace('meta_init', 'random_init'), float('nan')))} / "
                           f"{fmt(results[k])}" for k in per)
               + "; a subject whose meta-init fit never reaches it counts as the whole fit in the mean above.")
  return "\n".join(lines) + "\n"
