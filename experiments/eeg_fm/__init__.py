"""EEG: general time-series foundation models vs specialised EEG models (Turgut, Bott, Ploner, Rueckert 2025)."""

from jaxmed.core import result_float

TITLE = "EEG: general time-series models (OTiS-, TimesFM-style) vs EEGNet / BIOT on age, seizure, events"
HEADLINE = ("age/mae/otis/linear", "age/mae/eegnet/scratch", "seizure/auroc/timesfm/linear",
            "seizure/auroc/biot/scratch", "events/balanced_accuracy/otis/full", "events/balanced_accuracy/eegnet/scratch",
            "localisation/top_k_hit/eegnet")

ROWS = ([(m, p) for m in ("otis", "timesfm") for p in ("linear", "mlp", "full")]
        + [("otis_random", "linear"), ("eegnet", "scratch"), ("biot", "scratch"), ("chance", "constant")])
COLUMNS = (("age", "mae"), ("age", "pearson_r"), ("seizure", "balanced_accuracy"), ("seizure", "auroc"),
           ("seizure", "auprc"), ("events", "balanced_accuracy"), ("events", "kappa"), ("events", "weighted_f1"))


def results_table(results: dict) -> str:
  """Markdown: every model x protocol on every task metric; the context-length table; localisation."""
  g = lambda k: result_float(results.get(k, float("nan")))  # noqa: E731
  lines = ["| model | protocol | " + " | ".join(f"{t} {m}" for t, m in COLUMNS) + " |",
           "|---|---|" + "---|" * len(COLUMNS)]
  for model, protocol in ROWS:
    lines.append(f"| {model} | {protocol} | " + " | ".join(f"{g(f'{t}/{m}/{model}/{protocol}'):.3f}"
                                                          for t, m in COLUMNS) + " |")
  seconds = sorted({k.split("/")[-1] for k in results if k.startswith("context/")}, key=float)
  lines += ["", "Context length (linear probe): age MAE in years, seizure AUROC.", "",
            "| task | model | " + " | ".join(f"{s} s" for s in seconds) + " |", "|---|---|" + "---|" * len(seconds)]
  for task in ("age", "seizure"):
    for model in ("otis", "timesfm"):
      lines.append(f"| {task} | {model} | " + " | ".join(f"{g(f'context/{task}/{model}/{s}'):.3f}" for s in seconds)
                   + " |")
  models = ("otis", "timesfm", "eegnet", "biot")
  lines += ["", "Seizure localisation, top-k hit rate (k = injected channels; chance 4/19 = 0.21):", "",
            "| attribution | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
  for key, label in (("top_k_hit", "IG, background baselines"), ("top_k_hit_zero_baseline", "IG, zero baseline"),
                     ("occlusion_top_k_hit", "occlusion with background")):
    lines.append(f"| {label} | " + " | ".join(f"{g(f'localisation/{key}/{m}'):.2f}" for m in models) + " |")
  return "\n".join(lines) + "\n"
