"""Self-supervised feature learning assisted cine MRI reconstruction, with its baselines."""

TITLE = "SSFL-Recon (Xu, Kuestner et al., IEEE TMI 2025)"
HEADLINE = ("psnr/R8/ssfl", "psnr/R8/parallel_nofeat", "psnr/R8/zero_filled")

METHODS = ("zero_filled", "cg_sense", "ssdu", "parallel_nofeat", "ssfl", "ssfl_random_features", "supervised")


def results_table(results: dict) -> str:
  """Markdown table of PSNR, SSIM and NMSE for every method and evaluated R (the tour writes it to the docs)."""
  rs = sorted({int(k.split("/")[1][1:]) for k in results if k.startswith("psnr/R")})
  lines = ["| metric | R | " + " | ".join(METHODS) + " |", "|---|---|" + "---|" * len(METHODS)]
  for metric, label, fmt in (("psnr", "PSNR", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("nmse", "NMSE", "{:.4f}")):
    for r in rs:
      cells = [fmt.format(results[f"{metric}/R{r}/{m}"]) if f"{metric}/R{r}/{m}" in results else "–" for m in METHODS]
      lines.append(f"| {label} | {r} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"
