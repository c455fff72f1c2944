"""AlphaMed's figure: GRPO curves of every run and greedy test accuracy by base-model difficulty."""

from __future__ import annotations

import numpy as np

from jaxmed import core

DIFFICULTIES = ("easy", "medium", "hard")


def plot(runs, results, path, grader="accuracy"):
  """Reward, training accuracy (the ``grader`` reward), completion length and KL per GRPO step for every run;
  test accuracy by difficulty."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  panels = (("reward_mean", "mean reward"), (f"reward/{grader}_mean", f"{grader} reward (train samples)"),
            ("completion_len_mean", "completion length (tokens)"), ("kl", "KL to the base (k3)"))
  fig, ax = plt.subplots(1, len(panels) + 1, figsize=(4 * (len(panels) + 1), 3.6))
  for name, rows in runs.items():
    steps = [r["step"] for r in rows]
    for a, (key, _) in zip(ax, panels):
      a.plot(steps, [r.get(key, np.nan) for r in rows], label=name)
  for a, (_, label) in zip(ax, panels):
    a.set(xlabel="GRPO step", ylabel=label)
  ax[0].legend(fontsize=7)
  x = np.arange(len(DIFFICULTIES))
  for off, tag in ((-0.2, "base"), (0.2, "grpo")):
    ax[-1].bar(x + off, [results.get(f"acc/{tag}/{d}", np.nan) for d in DIFFICULTIES], 0.4, label=tag)
  if "acc/format_only" in results:
    ax[-1].axhline(results["acc/format_only"], color="k", ls="--", lw=1, label="format-only control (all)")
  ax[-1].set_xticks(x, DIFFICULTIES)
  ax[-1].set(ylabel="greedy test accuracy", title="by base-model difficulty")
  ax[-1].legend(fontsize=7)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)
