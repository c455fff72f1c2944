"""Sampling masks: VISTA for cine, the SSDU split, and fastMRI's random / equispaced line masks.

All masks are boolean numpy arrays and seeded. Cine masks are ``[T, W]``:
phase-encoding line ``ky`` acquired in frame ``t`` (the readout ``kx`` is
always full). :func:`expand_line_mask` gives the ``[T, H, W]`` point mask.
"""

from __future__ import annotations

import numpy as np


def _density_cdf(p: int, alpha: float, sigma: float):
  """CDF on the ky grid of the variable density ``(1 - alpha) + alpha * N(ky; centre, sigma)`` (normalised)."""
  k = np.arange(p) - p // 2
  rho = (1.0 - alpha) + alpha * np.exp(-0.5 * (k / sigma) ** 2) / (np.exp(-0.5 * (k / sigma) ** 2).mean())
  cdf = np.concatenate([[0.0], np.cumsum(rho)])
  return cdf / cdf[-1]


def vista_mask(p: int, t: int, R: float, *, seed: int = 0, alpha: float = 0.28, iters: int = 120, s: float = 1.4,
               ss: float = 0.25, sigma: float | None = None) -> np.ndarray:
  """VISTA (Ahmad et al., MRM 2015): ``round(p / R)`` lines in each of ``t`` frames, ``[t, p]`` bool.

  Samples in the (ky, t) plane repel each other like charges, with force
  ``~ 1 / d^s`` where the time axis is scaled by ``ss`` (and wraps around,
  cine being periodic), for ``iters`` iterations with a shrinking step. The
  relaxation runs in a warped ky coordinate (the CDF of a variable density:
  uniform plus ``alpha`` x a Gaussian envelope of width ``sigma = p / 5``),
  so the result is denser at the centre (the warped axis wraps around, so
  the edges feel no one-sided push). Samples are then snapped to the
  grid, duplicates within a frame moved to the nearest free line, and every
  line left empty over the whole series takes a sample from a line that has
  several, so the time-averaged k-space is fully sampled (possible when
  ``round(p / R) * t >= p``; otherwise the centre-most lines are covered).
  Defaults are the official code's (alpha 0.28, 120 iterations, s 1.4, ss 0.25).
  """
  n = max(1, int(round(p / R)))
  rng = np.random.default_rng(seed)
  sigma = p / 5.0 if sigma is None else sigma
  cdf = _density_cdf(p, alpha, sigma)
  # warped coordinate u in [0, p): uniform repulsion there is variable density in ky
  u = np.concatenate([(np.arange(n) + rng.uniform(0, 1, n)) * p / n for _ in range(t)])
  u = (u + rng.uniform(0, p / n, t).repeat(n)) % p
  frame = np.repeat(np.arange(t), n).astype(np.float64)
  for it in range(iters):
    du = u[:, None] - u[None, :]
    du = (du + p / 2) % p - p / 2  # the warped ky axis wraps, so no sample piles up at an edge
    dt = frame[:, None] - frame[None, :]
    dt = (dt + t / 2) % t - t / 2  # periodic in time (cine)
    d = np.sqrt(du ** 2 + (ss * p / n * dt) ** 2 + 1e-9) + np.eye(len(u))
    force = (du / d ** (s + 1)).sum(1)
    step = 0.5 * (p / n) * (1.0 - it / iters)
    u = (u + step * np.tanh(force / (np.abs(force).mean() + 1e-12))) % p
  ky = np.clip(np.searchsorted(cdf, u / p, side="right") - 1, 0, p - 1)
  mask = np.zeros((t, p), bool)
  for f in range(t):
    for k in ky[frame == f]:
      free = np.flatnonzero(~mask[f])
      mask[f, free[np.argmin(np.abs(free - k))] if mask[f, k] else k] = True
  # cover the time average: each empty line takes a sample from the nearest line acquired in several frames
  order = np.argsort(np.abs(np.arange(p) - p // 2), kind="stable")
  for line in order:
    count = mask.sum(0)
    if count[line] or not (count > 1).any():
      continue
    donors = np.flatnonzero(count > 1)
    src = donors[np.argmin(np.abs(donors - line))]
    f = rng.choice(np.flatnonzero(mask[:, src] & ~mask[:, line]))
    mask[f, src], mask[f, line] = False, True
  return mask


def expand_line_mask(mask: np.ndarray, h: int) -> np.ndarray:
  """``[T, W]`` line mask -> ``[T, H, W]`` point mask (every readout sample of an acquired line)."""
  return np.broadcast_to(np.asarray(mask)[:, None, :], (mask.shape[0], h, mask.shape[1])).copy()


def ssdu_split(mask: np.ndarray, *, rho: float = 0.4, seed: int = 0, calib: tuple[int, int] = (4, 4),
               std_scale: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
  """SSDU (Yaman et al., MRM 2020) split of an acquired point mask ``[T, H, W]`` into ``(train, loss)``.

  Per frame, ``round(rho * acquired)`` points go to the loss set, drawn
  without replacement with Gaussian weights centred on the k-space centre
  (std = size / ``std_scale``); a ``calib`` block at the centre always stays in
  the train set. The two sets are disjoint and their union is ``mask``.
  """
  mask = np.asarray(mask, bool)
  rng = np.random.default_rng(seed)
  t, h, w = mask.shape
  yy, xx = np.mgrid[0:h, 0:w]
  weight = np.exp(-0.5 * (((yy - h // 2) / (h / std_scale)) ** 2 + ((xx - w // 2) / (w / std_scale)) ** 2))
  keep = np.zeros((h, w), bool)
  keep[h // 2 - calib[0] // 2:h // 2 + (calib[0] + 1) // 2, w // 2 - calib[1] // 2:w // 2 + (calib[1] + 1) // 2] = True
  loss = np.zeros_like(mask)
  for f in range(t):
    cand = np.flatnonzero((mask[f] & ~keep).ravel())
    k = min(int(round(rho * mask[f].sum())), len(cand))
    if k:
      prob = weight.ravel()[cand]
      pick = rng.choice(cand, k, replace=False, p=prob / prob.sum())
      loss[f].ravel()[pick] = True
  return mask & ~loss, loss


def fastmri_random_mask(w: int, *, center_fraction: float = 0.08, acceleration: int = 4, seed: int = 0) -> np.ndarray:
  """fastMRI ``RandomMaskFunc``: the central lines plus others at random for an overall ``1/acceleration``; ``[W]``."""
  rng = np.random.default_rng(seed)
  n_center = int(round(w * center_fraction))
  prob = (w / acceleration - n_center) / (w - n_center)
  mask = rng.uniform(size=w) < prob
  pad = (w - n_center + 1) // 2
  mask[pad:pad + n_center] = True
  return mask


def fastmri_equispaced_mask(w: int, *, center_fraction: float = 0.08, acceleration: int = 4,
                            seed: int = 0) -> np.ndarray:
  """fastMRI ``EquispacedMaskFunc``: the central lines plus every ``acceleration``-th line from a random offset."""
  rng = np.random.default_rng(seed)
  n_center = int(round(w * center_fraction))
  mask = np.zeros(w, bool)
  mask[rng.integers(acceleration)::acceleration] = True
  pad = (w - n_center + 1) // 2
  mask[pad:pad + n_center] = True
  return mask
