"""The MedVLM-R1 experiment's figures: reward curves with test accuracies, and test images with completions."""

from __future__ import annotations

import textwrap

import numpy as np

from jaxmed import core

POLICIES = ("base", "grpo", "format_only")


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_rewards(curves: dict[str, list[dict]], results: dict, path: str) -> None:
  """Training reward of each GRPO run (raw and smoothed), completion length and KL, and greedy test accuracy
  per modality for every policy beside the chance and constant-letter floors."""
  plt = _pyplot()
  fig, ax = plt.subplots(1, 3, figsize=(15, 3.8))
  smooth = lambda y: np.convolve(y, np.ones(min(5, len(y))) / min(5, len(y)), mode="valid")  # noqa: E731
  for tag, curve in curves.items():
    steps = np.asarray([r["step"] for r in curve])
    for key, label in (("reward_mean", "total"), ("reward/medvlm_r1_accuracy_mean", "accuracy")):
      y = np.asarray([r.get(key, np.nan) for r in curve])
      if np.all(np.isnan(y)):
        continue
      line, = ax[0].plot(steps[len(steps) - len(smooth(y)):], smooth(y), label=f"{tag}: {label}")
      ax[0].plot(steps, y, alpha=0.2, color=line.get_color())
    ax[1].plot(steps, [r["completion_len_mean"] for r in curve], label=f"{tag}: length")
    ax[1].plot(steps, [r["kl"] * 1000 for r in curve], "--", label=f"{tag}: KL x 1000")
  ax[0].set(xlabel="GRPO step", ylabel="mean reward (training samples)", title="rewards")
  ax[0].legend(fontsize=7)
  ax[1].set(xlabel="GRPO step", title="completion length and KL")
  ax[1].legend(fontsize=7)
  keys = sorted(k.split("/")[-1] for k in results if k.startswith("acc/base/") and "/kind/" not in k
                and k != "acc/base/all")
  x = np.arange(len(keys))
  tags = [t for t in POLICIES if f"acc/{t}/{keys[0]}" in results] if keys else []
  width = 0.8 / max(1, len(tags))
  for i, tag in enumerate(tags):
    ax[2].bar(x + (i - (len(tags) - 1) / 2) * width, [results[f"acc/{tag}/{k}"] for k in keys], width, label=tag)
  for key, style in (("chance", ":"), ("constant_letter_best", "--")):
    for j, k in enumerate(keys):
      ax[2].hlines(results.get(f"acc/{key}/{k}", np.nan), j - 0.45, j + 0.45, colors="k", linestyles=style,
                   label=key.replace("_", " ") if j == 0 else None)
  ax[2].set_xticks(x, keys)
  ax[2].set(ylabel="greedy test accuracy", title="by modality (MRI in domain)", ylim=(0, 1))
  ax[2].legend(fontsize=7)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)


def plot_examples(images, items, texts: dict[str, list[str]], n: int, path: str) -> None:
  """Test images, the first question of each (modalities taken in turn), the gold letter and each policy's
  greedy completion (``texts``: ``{policy: [completion per item]}``)."""
  plt = _pyplot()
  by_mod: dict[str, list[int]] = {}
  seen: set[int] = set()
  for i, it in enumerate(items):
    if it["image"] not in seen:
      seen.add(it["image"])
      by_mod.setdefault(it["modality"], []).append(i)
  picks = [i for group in zip(*by_mod.values()) for i in group][:n] or list(range(min(n, len(items))))
  fig, axes = plt.subplots(1, len(picks), figsize=(3.8 * len(picks), 6.4), squeeze=False)
  for ax, i in zip(axes[0], picks):
    it = items[i]
    ax.imshow(images[it["image"]])
    ax.set_axis_off()
    opts = " ".join(f"{k}) {v}" for k, v in sorted(it["options"].items()))
    lines = textwrap.wrap(f"{it['question']} {opts} (gold {it['answer']})", 46)
    for tag, t in texts.items():
      shown = "".join(ch if ch.isprintable() else " " for ch in t[i])   # an untrained policy emits control bytes
      lines += [f"--- {tag}:"] + textwrap.wrap(shown, 46)[:6]
    ax.set_title(it["modality"], fontsize=9)
    ax.text(0, -0.05, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=6.2, family="monospace")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110, bbox_inches="tight")
  plt.close(fig)
