"""Synthetic scalp EEG with known ground truth: age, seizures (with their channels) and TUEV-like events.

One recording is the sum of (all in volts, on the 19 referential 10-20
channels, :data:`jaxmed.io.eeg.REFERENTIAL_19`):

- **background**: per-source 1/f^beta noise (beta ~ U(1.2, 1.8), ~15 uV rms)
  mixed across channels with the spatial correlation ``exp(-d / 4 cm)`` of
  the electrode distances ``d`` (MNE's template 10-20 positions);
- **occipital alpha**: a waxing and waning rhythm weighted towards O1/O2/Pz
  whose peak frequency falls with age, ``f_alpha = 10.8 - 0.025 (age - 20)
  + N(0, 0.2)`` Hz (the posterior dominant rhythm slows with age: about
  10.5 Hz in young adults, below 9.5 Hz beyond 70), amplitude 20-35 uV;
- **eye blinks**: ~0.3 s monophasic positive deflections, 80-200 uV at
  Fp1/Fp2, attenuated over F3/F4/F7/F8/Fz, at ~0.2 blinks/s;
- **seizures** (``seizures=[(onset_s, duration_s, focus)]``): 3 Hz
  spike-and-wave (a 40 ms spike, then a 200 ms slow wave, the rate slowing
  from 3.5 to 2.5 Hz) or rhythmic 4-6 Hz sharp bursts, 100-200 uV, only on
  the focus channels (:data:`FOCI`); the ground truth channel set comes back;
- **events** (``events=[(onset_s, class)]``, 1 s each, :data:`EVENT_CLASSES`):
  ``spsw`` a focal spike (or sharp wave) and slow wave, ``gped`` generalised
  periodic sharp discharges at ~2 Hz, ``pled`` periodic sharp discharges over
  one hemisphere at ~1.5 Hz, ``eyem`` a lateral eye movement (opposite
  polarity at F7 and F8, a step at Fp1/Fp2), ``artf`` a temporal muscle burst
  (20-35 Hz) or an electrode pop, ``bckg`` nothing added.

Annotations are ``(onset_s, duration_s, description)`` with descriptions
``"seizure"`` or the event class names, ready for EDF+.
"""

from __future__ import annotations

import functools

import numpy as np

from jaxmed.io.eeg import REFERENTIAL_19

CHANNELS = REFERENTIAL_19
EVENT_CLASSES = ("spsw", "gped", "pled", "eyem", "artf", "bckg")
FOCI = {"left_temporal": ("F7", "T7", "P7", "C3"), "right_temporal": ("F8", "T8", "P8", "C4"),
        "left_parietal": ("P3", "P7", "O1", "C3"), "right_frontal": ("Fp2", "F4", "F8", "Fz")}
_LEFT = ("Fp1", "F7", "F3", "T7", "C3", "P7", "P3", "O1")
_RIGHT = ("Fp2", "F8", "F4", "T8", "C4", "P8", "P4", "O2")
UV = 1e-6


@functools.lru_cache(maxsize=1)
def electrode_positions() -> np.ndarray:
  """``[19, 3]`` metres: MNE's template 10-20 positions of :data:`CHANNELS` (``colin27_1020``, formerly ``standard_1020``)."""
  import mne
  name = "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() else "standard_1020"
  pos = mne.channels.make_standard_montage(name).get_positions()["ch_pos"]
  return np.stack([pos[c] for c in CHANNELS]).astype(np.float64)


def _index(names) -> np.ndarray:
  return np.array([CHANNELS.index(n) for n in names])


def alpha_frequency(age: float | np.ndarray) -> np.ndarray:
  """The noise-free occipital alpha peak (Hz) at ``age`` years: ``10.8 - 0.025 (age - 20)``."""
  return 10.8 - 0.025 * (np.asarray(age, np.float64) - 20.0)


def pink_noise(rng: np.random.Generator, shape: tuple[int, int], sfreq: float, beta: np.ndarray) -> np.ndarray:
  """``[S, T]`` unit-variance noise with power ~ 1/f^beta (per row ``beta``), flat below 0.5 Hz."""
  s, t = shape
  spec = np.fft.rfft(rng.standard_normal(shape), axis=-1)
  f = np.maximum(np.fft.rfftfreq(t, 1 / sfreq), 0.5)
  x = np.fft.irfft(spec * f[None] ** (-beta[:, None] / 2), n=t, axis=-1)
  return x / (x.std(-1, keepdims=True) + 1e-12)


def _bump(t: np.ndarray, centre: float, width: float) -> np.ndarray:
  return np.exp(-0.5 * ((t - centre) / width) ** 2)


def _spike_wave(t, t0, spike_ms=40.0, wave_ms=200.0, spike_amp=1.0, wave_amp=0.6):
  """One spike (negative Gaussian, ``spike_ms`` wide) then a positive slow wave after it."""
  return (-spike_amp * _bump(t, t0, spike_ms / 4000) + wave_amp * _bump(t, t0 + 0.6 * wave_ms / 1000,
                                                                          wave_ms / 4000))


def _seizure(rng, t, onset, duration) -> np.ndarray:
  """``[T]`` one seizure waveform (unit peak), zero outside ``[onset, onset + duration]``."""
  out = np.zeros_like(t)
  if rng.random() < 0.6:                                   # 3 Hz spike-and-wave, slowing 3.5 -> 2.5 Hz
    tk = onset
    while tk < onset + duration:
      out += _spike_wave(t, tk)
      tk += 1.0 / (3.5 - (tk - onset) / duration)
  else:                                                    # rhythmic sharp bursts
    f = rng.uniform(4.0, 6.0)
    phase = 2 * np.pi * f * (t - onset)
    out += np.sign(np.sin(phase)) * np.abs(np.sin(phase)) ** 0.5
  envelope = np.clip((t - onset) / 0.5, 0, 1) * np.clip((onset + duration - t) / 0.5, 0, 1)
  return out * envelope / (np.abs(out * envelope).max() + 1e-12)


def _event(rng, t, onset, cls) -> np.ndarray:
  """``[19, T]`` the event's field (volts) over its 1 s."""
  c = len(CHANNELS)
  out = np.zeros((c, len(t)))
  if cls == "bckg":
    return out
  if cls == "spsw":
    focus = _index(FOCI[rng.choice(list(FOCI))])
    w = _spike_wave(t, onset + rng.uniform(0.2, 0.6), spike_ms=rng.uniform(25, 80), wave_ms=rng.uniform(150, 300))
    out[focus] = rng.uniform(80, 150) * UV * w
  elif cls in ("gped", "pled"):
    rate = 2.0 if cls == "gped" else 1.5
    chans = np.arange(c) if cls == "gped" else _index(_LEFT if rng.random() < 0.5 else _RIGHT)
    w = sum(_spike_wave(t, tk, spike_ms=rng.uniform(60, 120), wave_ms=150, wave_amp=0.3)
            for tk in onset + 0.1 + np.arange(0, 1.0, 1.0 / rate))
    out[chans] = rng.uniform(80, 150) * UV * w
  elif cls == "eyem":
    sign = rng.choice([-1.0, 1.0])
    step = 1 / (1 + np.exp(-(t - onset - 0.4) / 0.05)) - 1 / (1 + np.exp(-(t - onset - 0.9) / 0.05))
    amp = rng.uniform(80, 150) * UV
    out[_index(["F7"])] = sign * amp * step
    out[_index(["F8"])] = -sign * amp * step
    out[_index(["Fp1", "Fp2"])] = 0.5 * amp * step
  elif cls == "artf":
    inside = (t >= onset) & (t < onset + 1.0)
    if rng.random() < 0.6:                                 # muscle: band-limited 20-35 Hz burst, temporal
      burst = np.zeros_like(t)
      for f in rng.uniform(20, 35, size=6):
        burst += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
      side = ["F7", "T7"] if rng.random() < 0.5 else ["F8", "T8"]
      out[_index(side)] = rng.uniform(30, 60) * UV * burst / 2.5 * inside
    else:                                                  # electrode pop: a step with exponential decay
      ch = rng.integers(c)
      t0 = onset + rng.uniform(0.1, 0.5)
      out[ch] = rng.uniform(150, 300) * UV * np.where(t >= t0, np.exp(-(t - t0) / 0.2), 0.0)
  else:
    raise ValueError(f"unknown EEG event class {cls!r}; expected one of {EVENT_CLASSES}")
  return out


def eeg_recording(seed: int, *, duration_s: float = 30.0, sfreq: float = 200.0, age: float = 50.0,
                  seizures=(), events=(), blink_rate: float = 0.2) -> dict:
  """One recording; returns ``data [19, T]`` volts, ``sfreq``, ``ch_names``, ``annotations``, ground truth.

  ``seizures``: ``(onset_s, duration_s, focus_name)``; ``events``: ``(onset_s, class)``.
  Ground truth: ``age``, ``alpha_hz`` (this subject's alpha peak),
  ``seizure_channels`` (list of channel-name tuples, one per seizure).
  """
  rng = np.random.default_rng(seed)
  n = int(round(duration_s * sfreq))
  t = np.arange(n) / sfreq
  pos = electrode_positions()
  d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
  mix = np.linalg.cholesky(np.exp(-d / 0.04) + 1e-6 * np.eye(len(CHANNELS)))
  x = 15 * UV * mix @ pink_noise(rng, (len(CHANNELS), n), sfreq, rng.uniform(1.2, 1.8, len(CHANNELS)))
  x /= np.sqrt((mix ** 2).sum(1, keepdims=True))
  # occipital alpha: frequency drifts slowly around the subject's peak
  f_alpha = float(alpha_frequency(age) + rng.normal(0, 0.2))
  drift = 0.1 * np.cumsum(rng.standard_normal(n)) / np.sqrt(n)
  phase = 2 * np.pi * np.cumsum(f_alpha + drift) / sfreq + rng.uniform(0, 2 * np.pi)
  envelope = 1 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 2 * np.pi))
  occ = (pos[_index(["O1"])] + pos[_index(["O2"])]) / 2
  w_alpha = np.exp(-0.5 * (np.linalg.norm(pos - occ, axis=-1) / 0.05) ** 2)
  x += rng.uniform(20, 35) * UV * w_alpha[:, None] * (envelope * np.sin(phase))[None]
  # eye blinks
  w_blink = np.zeros(len(CHANNELS))
  w_blink[_index(["Fp1", "Fp2"])] = 1.0
  w_blink[_index(["F3", "F4", "F7", "F8", "Fz"])] = 0.35
  for tb in np.sort(rng.uniform(0, duration_s, rng.poisson(blink_rate * duration_s))):
    dt = np.maximum(t - tb, 0.0)
    shape = (dt / 0.1) ** 2 * np.exp(-dt / 0.05)
    x += rng.uniform(80, 200) * UV * w_blink[:, None] * (shape * np.e ** 2)[None]
  annotations, seizure_channels = [], []
  for onset, duration, focus in seizures:
    chans = FOCI[focus]
    x[_index(chans)] += rng.uniform(100, 200) * UV * _seizure(rng, t, onset, duration)[None]
    annotations.append((float(onset), float(duration), "seizure"))
    seizure_channels.append(chans)
  for onset, cls in events:
    x += _event(rng, t, onset, cls)
    annotations.append((float(onset), 1.0, cls))
  return {"data": x.astype(np.float32), "sfreq": float(sfreq), "ch_names": CHANNELS,
          "annotations": sorted(annotations), "age": float(age), "alpha_hz": f_alpha,
          "seizure_channels": seizure_channels}


def seizure_plan(rng: np.random.Generator, duration_s: float, count: int) -> list[tuple[float, float, str]]:
  """``count`` non-overlapping seizures of 6-14 s at random onsets and foci (none in the first/last 2 s)."""
  plan, cursor = [], 2.0
  slot = (duration_s - 4.0) / max(count, 1)
  for i in range(count):
    dur = float(min(rng.uniform(6, 14), slot - 1))
    onset = float(cursor + rng.uniform(0, max(slot - dur - 1, 0)))
    plan.append((round(onset, 2), round(dur, 2), str(rng.choice(list(FOCI)))))
    cursor = 2.0 + (i + 1) * slot
  return plan


def event_plan(rng: np.random.Generator, duration_s: float, spacing_s: float = 6.0) -> list[tuple[float, str]]:
  """Events every ``spacing_s`` (after 2.5 s), classes uniformly drawn from :data:`EVENT_CLASSES`."""
  onsets = np.arange(2.5, duration_s - 3.5, spacing_s)
  return [(round(float(o), 2), str(rng.choice(EVENT_CLASSES))) for o in onsets]
