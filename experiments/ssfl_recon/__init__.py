"""Self-supervised feature learning assisted cine MRI reconstruction, with its baselines."""

TITLE = "SSFL-Recon (Xu, Kuestner et al., IEEE TMI 2025)"
HEADLINE = ("psnr/R8/ssfl", "psnr/R8/parallel_nofeat", "psnr/R8/ssfl_random_features", "paired_gain/R8/ssfl_vs_nofeat",
            "psnr/R8/zero_filled", "protocol/unseen_fraction_max")

METHODS = ("zero_filled", "cg_sense", "ssdu", "parallel_nofeat", "ssfl", "ssfl_random_features", "supervised")
SETTINGS = (("", "training data acquired at R = 2 (the official protocol)"),
            ("acq_test_r/", "training data acquired at the test R (prospective)"))


def _cell(results, prefix, metric, rest, fmt):
  key = f"{prefix}{metric}/{rest}"
  if key not in results:
    return "–"
  trained = rest.split("/")[-1] not in ("zero_filled", "cg_sense")  # the classical ones have no seed
  sd = results.get(f"{prefix}{metric}_sd/{rest}") if trained else None
  return fmt.format(results[key]) + (f" ± {fmt.format(sd)}" if sd else "")


def results_table(results: dict) -> str:
  """Markdown tables (mean ± sd over seeds) per acquisition setting, and the paired gains with their CIs."""
  rs = sorted({int(k.split("/")[1][1:]) for k in results if k.startswith("psnr/R")})
  lines = []
  for prefix, title in SETTINGS:
    if f"{prefix}psnr/R{rs[0]}/ssfl" not in results:
      continue
    lines += [f"**{title}**; unseen fraction {results.get(f'{prefix}protocol/unseen_fraction_max', float('nan')):g}",
              "", "| metric | R | " + " | ".join(METHODS) + " |", "|---|---|" + "---|" * len(METHODS)]
    for metric, label, fmt in (("psnr", "PSNR", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("nmse", "NMSE", "{:.4f}"),
                               ("psnr_official", "PSNR (official)", "{:.2f}")):
      for r in rs:
        cells = [_cell(results, prefix, metric, f"R{r}/{m}", fmt) for m in METHODS]
        lines.append(f"| {label} | {r} | " + " | ".join(cells) + " |")
    lines.append("")
    gains = sorted(k for k in results if k.startswith(f"{prefix}paired_gain/"))
    if gains:
      lines += ["| paired PSNR gain (per subject, seed-averaged) | dB | 95% CI |", "|---|---|---|"]
      for k in gains:
        lo, hi = results[k.replace("paired_gain/", "paired_gain_ci/")]
        lines.append(f"| {k[len(prefix) + len('paired_gain/'):]} | {results[k]:+.2f} | [{lo:+.2f}, {hi:+.2f}] |")
      lines.append("")
  return "\n".join(lines)
