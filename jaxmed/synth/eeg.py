"""Synthetic scalp EEG with known ground truth: age, seizures (with their channels) and TUEV-like events.

One recording is the sum of (all in volts, on the 19 referential 10-20
channels, :data:`jaxmed.io.eeg.REFERENTIAL_19`):

- **background**: per-source 1/f^beta noise mixed across channels with the
  spatial correlation ``exp(-d / 4 cm)`` of the electrode distances ``d``
  (MNE's template 10-20 positions); the subject's rms ``background_uv``
  (U(10, 20) uV) and aperiodic exponent ``beta = 1.9 - 0.008 (age - 20) +
  N(0, 0.12)`` (the spectrum flattens with age), +-0.1 per source;
- **occipital alpha**: a waxing and waning rhythm weighted towards O1/O2/Pz
  whose peak frequency falls with age, ``f_alpha = 10.8 - 0.025 (age - 20)
  + N(0, 0.5)`` Hz (the posterior dominant rhythm slows by ~0.2-0.3 Hz per
  decade, with a between-subject SD near 0.5-1 Hz), amplitude
  ``U(15, 30) (1 - 0.006 (age - 20))`` uV;
- **artefacts**: eye blinks (~0.3 s, 80-200 uV at Fp1/Fp2, attenuated over
  the frontal row, ~0.2/s), temporal muscle bursts (20-40 Hz, 0.5-2 s,
  ``muscle_rate``/s) and electrode pops (``pop_rate``/s);
- **seizures** (``seizures=[(onset_s, duration_s, focus)]``): a rhythmic
  discharge whose frequency evolves from U(5, 8) Hz down to U(2.5, 3.5) Hz,
  sharpened (spike-like peaks) in 60% of seizures, at an rms of ``U(1, 3)``
  times the background's on the focus channels (:data:`FOCI`), ramping up
  over 2 s; after ``U(2, 5)`` s it spreads at half amplitude to the channels
  within 9 cm of the focus centroid (focal onset and spread). The ground truth channel
  set (focus) comes back, and ``seizure_power [T]``: the injected signal's
  power summed over channels (the oracle's score);
- **events** (``events=[(onset_s, class)]``, 1 s each, :data:`EVENT_CLASSES`):
  ``spsw`` a focal spike (or sharp wave) and slow wave, ``gped`` generalised
  periodic sharp discharges at ~2 Hz, ``pled`` periodic sharp discharges over
  one hemisphere at ~1.5 Hz, ``eyem`` a lateral eye movement (opposite
  polarity at F7 and F8, a step at Fp1/Fp2), ``artf`` a temporal muscle burst
  (20-35 Hz) or an electrode pop, ``bckg`` nothing added;
- **seizure mimics** (``mimic_rate``/s): benign rhythmic theta / delta bursts (as rhythmic mid-temporal
  theta, FIRDA or drowsy bursts look): a fixed-frequency U(3, 8) Hz rhythm, sharpened in half of them, at
  U(1, 3) times the background rms on one focus's channels for U(2, 8) s. They share the seizures' band, amplitude
  and location but neither evolve in frequency nor spread, so a detector has to use those. ``mimic_power [T]`` is
  their injected power (ground truth, not part of any label).

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
  """``[T]`` one seizure waveform (unit rms inside), zero outside ``[onset, onset + duration]``.

  The instantaneous frequency glides from U(5, 8) Hz to U(2.5, 3.5) Hz; 60% of seizures are sharpened
  (``sign(s) |s|^0.4`` plus a spike at each peak), the rest sinusoidal; 2 s ramp in, 1 s ramp out.
  """
  inside = (t >= onset) & (t < onset + duration)
  f0, f1 = rng.uniform(5.0, 8.0), rng.uniform(2.5, 3.5)
  frac = np.clip((t - onset) / duration, 0, 1)
  freq = f0 + (f1 - f0) * frac
  phase = 2 * np.pi * np.cumsum(freq) * (t[1] - t[0]) + rng.uniform(0, 2 * np.pi)
  s = np.sin(phase)
  if rng.random() < 0.6:
    s = np.sign(s) * np.abs(s) ** 0.4 + 0.8 * np.cos(phase / 2) ** 40
  envelope = np.clip((t - onset) / 2.0, 0, 1) * np.clip((onset + duration - t) / 1.0, 0, 1) * inside
  out = s * envelope
  return out / (np.sqrt((out[inside] ** 2).mean()) + 1e-12)


def _rhythmic_burst(rng, t, onset, duration) -> np.ndarray:
  """``[T]`` a benign rhythmic burst (unit rms inside): U(3, 8) Hz at a fixed frequency, sharpened in half of
  them, 0.5 s ramps; zero outside ``[onset, onset + duration]``."""
  inside = (t >= onset) & (t < onset + duration)
  phase = 2 * np.pi * rng.uniform(3.0, 8.0) * t + rng.uniform(0, 2 * np.pi)
  s = np.sin(phase)
  if rng.random() < 0.5:
    s = np.sign(s) * np.abs(s) ** 0.4
  out = s * np.clip((t - onset) / 0.5, 0, 1) * np.clip((onset + duration - t) / 0.5, 0, 1) * inside
  return out / (np.sqrt((out[inside] ** 2).mean()) + 1e-12) if inside.any() else out


def _spread_channels(focus: tuple[str, ...], radius: float = 0.09) -> np.ndarray:
  """Indices of the non-focus channels within ``radius`` metres of the focus centroid."""
  pos = electrode_positions()
  centre = pos[_index(focus)].mean(0)
  near = np.flatnonzero(np.linalg.norm(pos - centre, axis=1) < radius)
  return np.setdiff1d(near, _index(focus))


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
                  seizures=(), events=(), blink_rate: float = 0.2, muscle_rate: float = 0.03,
                  pop_rate: float = 0.01, mimic_rate: float = 0.0) -> dict:
  """One recording; returns ``data [19, T]`` volts, ``sfreq``, ``ch_names``, ``annotations``, ground truth.

  ``seizures``: ``(onset_s, duration_s, focus_name)``; ``events``: ``(onset_s, class)``.
  Ground truth: ``age``, the subject's ``alpha_hz``, ``alpha_uv``, ``aperiodic_exponent``, ``background_uv``;
  ``seizure_channels`` (one focus tuple per seizure) and ``seizure_power [T]`` (V^2, summed over channels).
  """
  rng = np.random.default_rng(seed)
  n = int(round(duration_s * sfreq))
  t = np.arange(n) / sfreq
  c = len(CHANNELS)
  pos = electrode_positions()
  d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
  mix = np.linalg.cholesky(np.exp(-d / 0.04) + 1e-6 * np.eye(c))
  background_uv = float(rng.uniform(10.0, 20.0))
  exponent = float(1.9 - 0.008 * (age - 20.0) + rng.normal(0, 0.12))
  x = mix @ pink_noise(rng, (c, n), sfreq, exponent + rng.uniform(-0.1, 0.1, c))
  x *= background_uv * UV / np.sqrt((mix ** 2).sum(1, keepdims=True))
  # occipital alpha: frequency drifts slowly around the subject's peak
  f_alpha = float(alpha_frequency(age) + rng.normal(0, 0.5))
  alpha_uv = float(rng.uniform(15, 30) * max(1 - 0.006 * (age - 20.0), 0.3))
  drift = 0.1 * np.cumsum(rng.standard_normal(n)) / np.sqrt(n)
  phase = 2 * np.pi * np.cumsum(f_alpha + drift) / sfreq + rng.uniform(0, 2 * np.pi)
  envelope = 1 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 2 * np.pi))
  occ = (pos[_index(["O1"])] + pos[_index(["O2"])]) / 2
  w_alpha = np.exp(-0.5 * (np.linalg.norm(pos - occ, axis=-1) / 0.05) ** 2)
  x += alpha_uv * UV * w_alpha[:, None] * (envelope * np.sin(phase))[None]
  # artefacts: blinks, muscle bursts, electrode pops
  w_blink = np.zeros(c)
  w_blink[_index(["Fp1", "Fp2"])] = 1.0
  w_blink[_index(["F3", "F4", "F7", "F8", "Fz"])] = 0.35
  for tb in np.sort(rng.uniform(0, duration_s, rng.poisson(blink_rate * duration_s))):
    dt = np.maximum(t - tb, 0.0)
    shape = (dt / 0.1) ** 2 * np.exp(-dt / 0.05)
    x += rng.uniform(80, 200) * UV * w_blink[:, None] * (shape * np.e ** 2)[None]
  for tm in rng.uniform(0, duration_s, rng.poisson(muscle_rate * duration_s)):
    inside = (t >= tm) & (t < tm + rng.uniform(0.5, 2.0))
    burst = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in rng.uniform(20, 40, size=6))
    side = ["F7", "T7", "P7"] if rng.random() < 0.5 else ["F8", "T8", "P8"]
    x[_index(side)] += rng.uniform(10, 40) * UV * burst / 2.5 * inside
  for tp in rng.uniform(0, duration_s, rng.poisson(pop_rate * duration_s)):
    x[rng.integers(c)] += rng.uniform(100, 300) * UV * np.where(t >= tp, np.exp(-(t - tp) / 0.2), 0.0)
  annotations, seizure_channels = [], []
  seizure = np.zeros((c, n))
  for onset, duration, focus in seizures:
    chans = FOCI[focus]
    wave = rng.uniform(1.0, 3.0) * background_uv * UV * _seizure(rng, t, onset, duration)
    seizure[_index(chans)] += wave[None]
    delay = int(round(rng.uniform(2.0, 5.0) * sfreq))
    spread = np.concatenate([np.zeros(delay), wave[:n - delay]]) if delay < n else np.zeros(n)
    seizure[_spread_channels(chans)] += 0.5 * spread * (t < onset + duration)[None]
    annotations.append((float(onset), float(duration), "seizure"))
    seizure_channels.append(chans)
  x += seizure
  for onset, cls in events:
    x += _event(rng, t, onset, cls)
    annotations.append((float(onset), 1.0, cls))
  mimic = np.zeros((c, n))
  for tm in rng.uniform(0, duration_s, rng.poisson(mimic_rate * duration_s)):
    mimic[_index(FOCI[rng.choice(list(FOCI))])] += rng.uniform(1.0, 3.0) * background_uv * UV * _rhythmic_burst(
        rng, t, tm, rng.uniform(2.0, 8.0))[None]
  x += mimic
  return {"data": x.astype(np.float32), "sfreq": float(sfreq), "ch_names": CHANNELS,
          "annotations": sorted(annotations), "age": float(age), "alpha_hz": f_alpha, "alpha_uv": alpha_uv,
          "aperiodic_exponent": exponent, "background_uv": background_uv, "seizure_channels": seizure_channels,
          "seizure_power": (seizure ** 2).sum(0).astype(np.float32),
          "mimic_power": (mimic ** 2).sum(0).astype(np.float32)}


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
