"""Windows of an EEG recording and their labels from annotations.

- :func:`event_windows`: TUEV-style windows centred on events: the 1 s event
  plus 2 s of context each side (5 s in all). An event too close to either
  end of the recording is zero-padded there, and the padding is returned so
  a caller can drop those windows instead.
- :func:`fixed_windows`: consecutive ``window_s`` windows every ``stride_s``.
- :func:`window_labels`: a label per window from ``(onset, duration,
  description)`` annotations: the class whose annotations cover the largest
  part of the window when that part is at least ``min_overlap`` of it, else
  ``background``.
- :func:`channel_window_labels`: the same from channel-wise annotations
  (TUSZ / TUEV), per channel and per window.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from jaxmed.io.eeg import EEGDataError


def event_windows(data: np.ndarray, sfreq: float, onsets_s: Sequence[float], *, event_s: float = 1.0,
                  context_s: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
  """``[N, C, round((event_s + 2 context_s) sfreq)]`` windows and ``[N]`` bools (True where zero-padded)."""
  c, t = data.shape
  length = int(round((event_s + 2 * context_s) * sfreq))
  out = np.zeros((len(onsets_s), c, length), data.dtype)
  padded = np.zeros(len(onsets_s), bool)
  for i, onset in enumerate(onsets_s):
    start = int(round((onset - context_s) * sfreq))
    lo, hi = max(start, 0), min(start + length, t)
    if hi <= lo:
      raise EEGDataError(f"event at {onset:.2f} s lies outside the recording (0 - {t / sfreq:.2f} s)")
    out[i, :, lo - start:hi - start] = data[:, lo:hi]
    padded[i] = lo != start or hi != start + length
  return out, padded


def fixed_windows(data: np.ndarray, sfreq: float, window_s: float,
                  stride_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
  """``[N, C, W]`` windows (``W = round(window_s sfreq)``) and their ``[N]`` start times (s); no partial window."""
  w = int(round(window_s * sfreq))
  step = int(round((stride_s or window_s) * sfreq))
  if data.shape[1] < w:
    raise EEGDataError(f"recording of {data.shape[1] / sfreq:.2f} s is shorter than one {window_s} s window")
  starts = np.arange(0, data.shape[1] - w + 1, step)
  return np.stack([data[:, s:s + w] for s in starts]), starts / sfreq


def window_labels(starts_s: np.ndarray, window_s: float, annotations: Sequence[tuple[float, float, str]],
                  classes: Mapping[str, int], *, background: int = 0, min_overlap: float = 0.5,
                  path: str = "") -> np.ndarray:
  """``[N]`` int labels. Descriptions not in ``classes`` are an error naming them (and ``path``)."""
  unknown = sorted({d for _, _, d in annotations if d not in classes})
  if unknown:
    raise EEGDataError(f"{path}: annotation descriptions {unknown} are not among the classes {sorted(classes)}")
  labels = np.full(len(starts_s), background, np.int64)
  for i, s in enumerate(starts_s):
    cover: dict[int, float] = {}
    for onset, duration, desc in annotations:
      part = min(s + window_s, onset + duration) - max(s, onset)
      if part > 0:
        cover[classes[desc]] = cover.get(classes[desc], 0.0) + part
    if cover:
      best = max(cover, key=cover.get)
      if cover[best] >= min_overlap * window_s:
        labels[i] = best
  return labels


def channel_window_labels(starts_s: np.ndarray, window_s: float, events: Sequence, channels: Sequence[str],
                          classes: Mapping[str, int], *, background: int = 0, min_overlap: float = 0.5,
                          path: str = "") -> tuple[np.ndarray, np.ndarray]:
  """Window labels from channel-wise annotations (TUSZ ``.csv``, TUEV ``.rec``: :mod:`jaxmed.io.eeg_labels`).

  ``events``: ``(channel, start, stop, label)`` tuples; channel ``"TERM"`` covers every channel. Returns
  ``[N, C]`` per-channel labels (:func:`window_labels`' overlap rule on each channel's events) and ``[N]`` window
  labels: the non-background class found on the most channels (ties: the lower class index), else background.
  A channel or label outside ``channels`` / ``classes`` is an error naming it (and ``path``).
  """
  index = {c: i for i, c in enumerate(channels)}
  unknown = sorted({e[0] for e in events if e[0] != "TERM" and e[0] not in index})
  if unknown:
    raise EEGDataError(f"{path}: annotation channels {unknown} are not in the montage {list(channels)}")
  per_channel: list[list] = [[] for _ in channels]
  for ch, start, stop, label, *_ in events:
    for c in (range(len(channels)) if ch == "TERM" else (index[ch],)):
      per_channel[c].append((start, stop - start, label))
  labels = np.stack([window_labels(starts_s, window_s, ann, classes, background=background,
                                   min_overlap=min_overlap, path=path) for ann in per_channel], 1)
  k = max(classes.values()) + 1
  counts = np.stack([(labels == j).sum(1) for j in range(k)], 1)
  counts[:, background] = 0
  window = np.where(counts.max(1) > 0, counts.argmax(1), background)
  return window.astype(np.int64), labels
