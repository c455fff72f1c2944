"""Biomarker localisation: Integrated Gradients over time and channels, per-channel relevance, topomaps.

For a window ``x [C, T]`` and a model's scalar output ``f`` (the seizure
logit margin, say), ``IG(x; x') [C, T]`` from a baseline ``x'``; the channel
relevance is ``sum_t |IG_ct|``, averaged over the baselines given. The
baseline matters: a flat (zero) recording is far outside what models that
normalise each channel (OTiS's robust z-score, BIOT's amplitude scaling)
ever see, so zero-baseline IG mostly measures how far each channel is from
flat. Background EEG windows (no seizure) as baselines, averaged (as in
expected gradients), ask the question of interest: what in this window
differs from background. :func:`occlusion_relevance` is the model-agnostic
check: the margin lost when one channel is swapped for background. The localisation score asks whether
the channels where the seizure was injected come first: ``top_k_hit`` is
``|top-k(relevance) & injected| / k`` with ``k = |injected|``, averaged over
windows. In the TCP montage a bipolar channel counts as injected when either
of its electrodes is, and :func:`electrode_relevance` splits its relevance
equally between its two electrodes for the topomap.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.nn.integrated_gradients import integrated_gradients
from jaxmed.core.stage import save_figure


def channel_relevance(f: Callable[[jax.Array], jax.Array], x: jax.Array, baselines: jax.Array | None = None, *,
                      steps: int = 16) -> tuple[jax.Array, jax.Array]:
  """``x [C, T]``, ``baselines [B, C, T]`` (None: one zero baseline) -> ``([C] relevance, [C, T] mean IG)``."""
  baselines = jnp.zeros_like(x)[None] if baselines is None else jnp.asarray(baselines)
  igs = jnp.stack([integrated_gradients(f, x, b, steps=steps) for b in baselines])
  return jnp.abs(igs).sum(-1).mean(0), igs.mean(0)


def occlusion_relevance(f: Callable[[jax.Array], jax.Array], x: jax.Array, baseline: jax.Array) -> jax.Array:
  """``[C]``: ``f(x) - f(x with channel c taken from baseline)`` for every channel ``c``."""
  c = x.shape[0]
  swapped = jnp.where(jnp.eye(c, dtype=bool)[:, :, None], baseline[None], x[None])     # [C, C, T]
  return f(x) - jax.vmap(f)(swapped)


def injected_channels(focus: Sequence[str], ch_names: Sequence[str]) -> np.ndarray:
  """Indices of the montage channels that carry an injected electrode (referential name or ``a-b`` pair)."""
  focus = set(focus)
  return np.array([i for i, n in enumerate(ch_names) if set(n.split("-")) & focus], np.int64)


def top_k_hit(relevance: np.ndarray, truth: Sequence[np.ndarray]) -> float:
  """Mean over windows of ``|top-k & truth| / k``, ``k = |truth|``; ``relevance [N, C]``."""
  hits = []
  for r, t in zip(np.asarray(relevance), truth):
    k = len(t)
    hits.append(len(set(np.argsort(-r)[:k].tolist()) & set(np.asarray(t).tolist())) / k)
  return float(np.mean(hits)) if hits else float("nan")


def electrode_relevance(relevance: np.ndarray, ch_names: Sequence[str], electrodes: Sequence[str]) -> np.ndarray:
  """``[C]`` montage relevance -> ``[E]`` per electrode (bipolar channels split equally between their two)."""
  out = np.zeros(len(electrodes))
  for r, name in zip(relevance, ch_names):
    parts = [p for p in name.split("-") if p in electrodes]
    for p in parts:
      out[list(electrodes).index(p)] += r / len(parts)
  return out


def plot_topomaps(maps: dict[str, np.ndarray], electrodes: Sequence[str], path: str) -> None:
  """One MNE topomap per entry of ``maps`` (``[E]`` per electrode) in a row, saved to ``path``.

  Each map is scaled to its own [min, max] so the spatial pattern, not the
  overall level, is what the colours show.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import mne
  info = mne.create_info(list(electrodes), 100.0, "eeg")
  name = "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() else "standard_1020"
  info.set_montage(mne.channels.make_standard_montage(name), verbose="error")
  fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.4), squeeze=False)
  for ax, (title, m) in zip(axes[0], maps.items()):
    m = np.asarray(m, np.float64)
    mne.viz.plot_topomap((m - m.min()) / (np.ptp(m) + 1e-12), info, axes=ax, show=False, cmap="Reds",
                         vlim=(0, 1), contours=0)
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  save_figure(fig, path, dpi=110)
  plt.close(fig)
