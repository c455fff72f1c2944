"""EEG: general time-series foundation models vs specialised EEG models (Turgut, Bott, Ploner, Rueckert 2025)."""

from jaxmed.core import result_float

TITLE = "EEG: general time-series models (OTiS, TimesFM-style) vs EEGNet / BIOT on age, seizure, events"
HEADLINE = ("seizure/auroc/oracle", "seizure/auroc/untrained_otis/linear", "seizure/auroc/otis/full",
            "seizure/auroc/biot/scratch", "age/mae/oracle", "age/mae/otis/linear", "age/mae/eegnet/scratch",
            "events/balanced_accuracy/otis/full")

ROWS = ([(m, p) for m in ("otis", "timesfm") for p in ("linear", "mlp", "full")]
        + [("untrained_otis", "linear"), ("eegnet", "scratch"), ("biot", "scratch"), ("chance", "constant")])
COLUMNS = (("age", "mae"), ("age", "pearson_r"), ("seizure", "balanced_accuracy"), ("seizure", "auroc"),
           ("seizure", "auprc"), ("events", "balanced_accuracy"), ("events", "kappa"), ("events", "weighted_f1"))


def _cell(results: dict, key: str, digits: int = 3) -> str:
  v = result_float(results.get(key, float("nan")))
  ci = results.get(key + "_ci")
  if ci is None:
    return f"{v:.{digits}f}"
  return f"{v:.{digits}f} [{result_float(ci[0]):.{digits}f}, {result_float(ci[1]):.{digits}f}]"


def results_table(results: dict) -> str:
  """Markdown: every model x protocol on every task metric (means over seeds, 95% subject-bootstrap CIs on the
  headline metrics), the oracle row, the context-length table and localisation."""
  lines = ["| model | protocol | " + " | ".join(f"{t} {m}" for t, m in COLUMNS) + " |",
           "|---|---|" + "---|" * len(COLUMNS)]
  for model, protocol in ROWS:
    lines.append(f"| {model} | {protocol} | " + " | ".join(_cell(results, f"{t}/{m}/{model}/{protocol}")
                                                          for t, m in COLUMNS) + " |")
  lines.append("| oracle | generator truth | " + " | ".join(
      _cell(results, f"{t}/{m}/oracle") if f"{t}/{m}/oracle" in results else "" for t, m in COLUMNS) + " |")
  seconds = sorted({k.split("/")[1] for k in results if k.startswith("context/")}, key=float)
  lines += ["", "Context length (linear probe): age MAE in years (per subject), seizure AUROC.", "",
            "| task | model | " + " | ".join(f"{s} s" for s in seconds) + " |", "|---|---|" + "---|" * len(seconds)]
  for task, metric in (("age", "mae"), ("seizure", "auroc")):
    for model in ("otis", "timesfm"):
      lines.append(f"| {task} | {model} | " + " | ".join(_cell(results, f"context/{s}/{task}/{metric}/{model}")
                                                         for s in seconds) + " |")
  for task, metric in (("seizure", "auroc"), ("age", "mae")):
    best = results.get(f"{task}/{metric}/best", "?")
    lines += ["", f"Paired differences in {task} {metric}, best ({best}) minus each row; 95% CI excluding 0 = "
              "significant:", "", "| row | difference [95% CI] | significant |", "|---|---|---|"]
    for key in sorted(k for k in results if k.startswith(f"compare/{task}/{metric}/") and not k.endswith("_ci")):
      lo, hi = (result_float(x) for x in results.get(key + "_ci", [float("nan")] * 2))
      sig = "yes" if lo > 0 or hi < 0 else "no"
      lines.append(f"| {key.split('/', 3)[3]} | {_cell(results, key)} | {sig} |")
  models = ("otis", "timesfm", "eegnet", "biot")
  lines += ["", "Seizure localisation (first seed), top-k hit rate (k = injected channels; chance 4/19 = 0.21):", "",
            "| attribution | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
  for key, label in (("top_k_hit", "IG, background baselines"), ("top_k_hit_zero_baseline", "IG, zero baseline"),
                     ("occlusion_top_k_hit", "occlusion with background")):
    lines.append(f"| {label} | " + " | ".join(_cell(results, f"localisation/{key}/{m}", 2) for m in models) + " |")
  return "\n".join(lines) + "\n"
