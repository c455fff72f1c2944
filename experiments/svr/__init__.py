"""Slice-to-volume reconstruction with INRs and a Reptile meta-learned initialisation (MetaSVR)."""

import math

from jaxmed.core import result_float

TITLE = "INR slice-to-volume reconstruction with Reptile initialisation (Dannecker et al. 2025)"
HEADLINE = ("psnr/nocorr", "psnr/oracle", "psnr/random_init", "psnr/meta_init", "steps_to_target/random_init",
            "steps_to_target/meta_init", "speedup/meta_init", "psnr/motion_20deg/meta_init", "psnr/metasvr_preset")
SETTINGS = ("nocorr", "oracle", "random_init", "meta_init")


def _f(v, fmt):
  v = result_float(v)
  return "–" if math.isnan(v) else format(v, fmt)


def results_table(results: dict) -> str:
  """Markdown tables: the settings, the steps/time to target, the motion sweep and MetaSVR's options."""
  cols = (("psnr", ".2f"), ("ssim", ".3f"), ("psnr_reg", ".2f"), ("ssim_reg", ".3f"), ("motion_err_deg", ".2f"),
          ("motion_err_mm", ".2f"), ("steps_to_target", ".0f"), ("time_to_target", ".1f"))
  lines = ["| setting | PSNR (dB) | SSIM | PSNR registered | SSIM registered | rotation error (deg) | "
           "translation error (mm) | steps to target | time to target (s) |", "|---|---|---|---|---|---|---|---|---|"]
  for s in SETTINGS + ("metasvr_preset",):
    lines.append(f"| {s} | " + " | ".join(_f(results.get(f"{c}/{s}", "nan"), fmt) for c, fmt in cols) + " |")
  lines.append("")
  seeds = sorted(k.rsplit("_", 1)[1] for k in results if k.startswith("speedup/meta_init/seed_"))
  lines.append(
      f"Speedup of the meta init (mean steps to the random init's final PSNR, random / meta): "
      f"**{_f(results.get('speedup/meta_init', 'nan'), '.2f')}x** (95% CI over subjects "
      f"{_f(results.get('speedup/meta_init/ci_lo', 'nan'), '.2f')}-"
      f"{_f(results.get('speedup/meta_init/ci_hi', 'nan'), '.2f')}; "
      f"PSNR gain meta - random {_f(results.get('paired_gain/psnr/meta_vs_random', 'nan'), '+.2f')} dB, CI "
      f"{_f(results.get('paired_gain/psnr/meta_vs_random/ci_lo', 'nan'), '+.2f')} to "
      f"{_f(results.get('paired_gain/psnr/meta_vs_random/ci_hi', 'nan'), '+.2f')}; wall time "
      f"{_f(results.get('speedup/meta_init/time', 'nan'), '.2f')}x; per seed "
      + ", ".join(f"{s}: {_f(results[f'speedup/meta_init/seed_{s}'], '.2f')}x" for s in seeds)
      + f"); reached by the meta init in "
      f"{_f(100 * result_float(results.get('steps_to_target/meta_init/reached', 'nan')), '.0f')}% "
      f"of the subject x seed fits (a fit that never reaches it counts as the whole fit). To within 0.5 dB of it: "
      f"{_f(results.get('steps_to_within_0.5dB/random_init', 'nan'), '.0f')} / "
      f"{_f(results.get('steps_to_within_0.5dB/meta_init', 'nan'), '.0f')} steps "
      f"({_f(results.get('speedup/meta_init/within_0.5dB', 'nan'), '.2f')}x). PSNR before any fitting (step 0): "
      f"random {_f(results.get('psnr_at_step_0/random_init', 'nan'), '.2f')} dB, meta "
      f"{_f(results.get('psnr_at_step_0/meta_init', 'nan'), '.2f')} dB. Seed spread of the mean "
      f"PSNR (sd over seeds): random {_f(results.get('psnr/random_init/seed_sd', 'nan'), '.2f')} dB, meta "
      f"{_f(results.get('psnr/meta_init/seed_sd', 'nan'), '.2f')} dB.")
  lines.append("")
  auroc = [f"{s} {_f(results.get(f'outlier_auroc/{s}', 'nan'), '.3f')} (raw sigma "
           f"{_f(results.get(f'outlier_auroc/{s}/raw_sigma', 'nan'), '.3f')})" for s in ("random_init", "meta_init")]
  lines.append("Outlier AUROC of the learned slice sigma on the volume's scale (sigma / scale): " + ", ".join(auroc)
               + ". Motion error over the clean informative slices: " + ", ".join(
                   f"{s} {_f(results.get(f'motion_err_deg/{s}/clean', 'nan'), '.2f')} deg" for s in SETTINGS) + ".")
  levels = sorted({int(k.split("/")[1][len("motion_"):-3]) for k in results if k.startswith("psnr/motion_")})
  if levels:
    lines += ["", "| severe motion (random walk + jumps) | PSNR random | PSNR meta | rotation error random / meta "
              "(deg) | uncorrected (deg) |", "|---|---|---|---|---|"]
    for lv in levels:
      g = lambda k: results.get(f"{k.split('/')[0]}/motion_{lv}deg/{k.split('/')[1]}", "nan")  # noqa: E731
      lines.append(f"| {lv} deg | {_f(g('psnr/random_init'), '.2f')} | {_f(g('psnr/meta_init'), '.2f')} | "
                   f"{_f(g('motion_err_deg/random_init'), '.2f')} / {_f(g('motion_err_deg/meta_init'), '.2f')} | "
                   f"{_f(g('motion_err_deg/nocorr'), '.2f')} |")
  return "\n".join(lines) + "\n"
