"""Generic (non-EEG) time series for pretraining general time-series models "without domain adaptation".

:func:`generic_series` draws ``[N, L]`` float32 series, one kind per row,
uniformly among

- ``sines``: 1-5 sinusoids, frequencies log-uniform in [0.002, 0.45]
  cycles/sample, random amplitudes and phases, plus a linear trend;
- ``ar``: a stable AR(p) process (p in 1..6, poles inside the unit circle
  with radius in [0.5, 0.99], conjugate pairs so the coefficients are real);
- ``walk``: a Gaussian random walk, optionally with drift;
- ``mixed``: a sum of a sinusoid, an AR(2) process and a walk.

Each row is scaled by a random factor and offset, so the models' RevIN /
robust normalisation has work to do. Nothing here resembles EEG on purpose.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

KINDS = ("sines", "ar", "walk", "mixed")


def _sines(rng, t):
  k = rng.integers(1, 6)
  f = np.exp(rng.uniform(np.log(0.002), np.log(0.45), k))
  a = rng.uniform(0.2, 1.0, k)
  x = (a[:, None] * np.sin(2 * np.pi * f[:, None] * t[None] + rng.uniform(0, 2 * np.pi, k)[:, None])).sum(0)
  return x + rng.normal(0, 0.5) * t / len(t)


def _ar(rng, n, order=None):
  p = order or int(rng.integers(1, 7))
  roots = []
  while len(roots) < p:
    r, th = rng.uniform(0.5, 0.99), rng.uniform(0, np.pi)
    roots += [r * np.exp(1j * th), r * np.exp(-1j * th)] if p - len(roots) >= 2 else [r * rng.choice([-1, 1])]
  coef = -np.real(np.poly(roots))[1:]                       # x_t = sum_k coef_k x_{t-k} + e_t
  return scipy.signal.lfilter([1.0], np.r_[1.0, -coef], rng.standard_normal(n + 100))[100:]


def _walk(rng, n):
  return np.cumsum(rng.standard_normal(n) + rng.normal(0, 0.05) * (rng.random() < 0.5))


def generic_series(num: int, length: int, *, seed: int = 0) -> np.ndarray:
  """``[num, length]`` float32 generic series (module docstring); row kinds cycle through :data:`KINDS`."""
  rng = np.random.default_rng(seed)
  t = np.arange(length, dtype=np.float64)
  out = np.empty((num, length), np.float32)
  for i in range(num):
    kind = KINDS[i % len(KINDS)]
    if kind == "sines":
      x = _sines(rng, t)
    elif kind == "ar":
      x = _ar(rng, length)
    elif kind == "walk":
      x = _walk(rng, length)
    else:
      x = _sines(rng, t) + 0.5 * _ar(rng, length, 2) / 3 + 0.2 * _walk(rng, length) / np.sqrt(length) * 3
    x = (x - x.mean()) / (x.std() + 1e-8)
    out[i] = x * np.exp(rng.uniform(-3, 3)) + rng.normal(0, 5)
  return out


def pretraining_corpus(num_generic: int, num_eeg: int, length: int, *, seed: int = 0,
                       sfreq: float = 100.0) -> dict[str, np.ndarray]:
  """``{"generic": [num_generic, length], "eeg": [num_eeg, length]}`` float32.

  ``eeg`` holds single-channel crops (microvolts) of unlabelled synthetic
  recordings (random ages 20-80, blinks, no seizures or events; one random
  channel each). The EEG study pretrains its general models on ``generic``
  only ("without domain adaptation"); ``eeg`` is there for the
  domain-adapted variant (``--config.pretrain.include_eeg=True``).
  """
  from jaxmed.synth import eeg as synth_eeg
  rng = np.random.default_rng(seed + 1)
  eeg = np.empty((num_eeg, length), np.float32)
  per_recording = len(synth_eeg.CHANNELS)
  for start in range(0, num_eeg, per_recording):
    rec = synth_eeg.eeg_recording(seed * 7919 + start, duration_s=length / sfreq + 1.0, sfreq=sfreq,
                                  age=float(rng.uniform(20, 80)))
    chans = rng.permutation(per_recording)[:min(per_recording, num_eeg - start)]
    eeg[start:start + len(chans)] = rec["data"][chans, :length] * 1e6
  return {"generic": generic_series(num_generic, length, seed=seed), "eeg": eeg}


def multivariate_series(num: int, variates: int, length: int, *, sources: int = 4, noise: float = 0.3,
                        seed: int = 0) -> np.ndarray:
  """``[num, variates, length]`` float32 multivariate generic series: each sample mixes ``sources`` generic
  series (:func:`generic_series`) into ``variates`` channels with a random Gaussian matrix, plus independent
  noise of ``noise`` times each channel's standard deviation.

  Multivariate pretraining data for OTiS-style models, whose attention runs across variates: with independent
  series as variates (no shared structure) there is nothing to learn across them. No EEG structure is used
  (no spectra, montages or electrode geometry), so the general models still see no EEG before evaluation.
  """
  rng = np.random.default_rng(seed)
  latent = generic_series(num * sources, length, seed=seed + 1).reshape(num, sources, length)
  latent = latent / (latent.std(-1, keepdims=True) + 1e-6)
  mix = rng.standard_normal((num, variates, sources))
  x = np.einsum("nvs,nst->nvt", mix, latent)
  x += noise * x.std(-1, keepdims=True) * rng.standard_normal(x.shape)
  return x.astype(np.float32)
