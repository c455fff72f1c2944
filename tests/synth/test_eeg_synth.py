"""Synthetic EEG: the ground truth is really in the signal (alpha vs age, seizure channels, events, blinks)."""

import numpy as np
import pytest
import scipy.signal

from jaxmed.synth import eeg, timeseries


def _alpha_peak(x, sfreq):
  f, p = scipy.signal.welch(x, sfreq, nperseg=int(8 * sfreq))
  band = (f >= 7) & (f <= 13)
  return f[band][np.argmax(p[band])]


def test_alpha_peak_follows_age_and_is_occipital():
  young, old = (eeg.eeg_recording(s, duration_s=60.0, age=a) for s, a in ((0, 20.0), (1, 80.0)))
  o1 = eeg.CHANNELS.index("O1")
  for rec in (young, old):
    assert _alpha_peak(rec["data"][o1], rec["sfreq"]) == pytest.approx(rec["alpha_hz"], abs=0.25)
  f, p = scipy.signal.welch(young["data"], 200.0, nperseg=1600)
  band = (f > young["alpha_hz"] - 1) & (f < young["alpha_hz"] + 1)
  alpha = p[:, band].sum(1)
  assert alpha[o1] > 5 * alpha[eeg.CHANNELS.index("Fz")]


def test_age_effects_have_realistic_sizes():
  """Across subjects: alpha slows by ~0.025 Hz/year with a ~0.5 Hz between-subject SD, the aperiodic exponent
  falls with age; so a 60-year age gap is ~3 SDs of alpha frequency, not a label."""
  ages = np.linspace(20, 80, 60)
  recs = [eeg.eeg_recording(100 + i, duration_s=1.0, age=a) for i, a in enumerate(ages)]
  alpha = np.array([r["alpha_hz"] for r in recs])
  slope, icpt = np.polyfit(ages, alpha, 1)
  assert -0.04 < slope < -0.012 and 0.35 < np.std(alpha - (slope * ages + icpt)) < 0.7
  expo = np.array([r["aperiodic_exponent"] for r in recs])
  assert np.corrcoef(ages, expo)[0, 1] < -0.6
  assert np.corrcoef(ages, [r["alpha_uv"] for r in recs])[0, 1] < -0.2


def test_seizure_is_focal_at_one_to_three_times_background_then_spreads():
  rec = eeg.eeg_recording(5, duration_s=30.0, seizures=[(10.0, 12.0, "right_temporal")], blink_rate=0.0,
                          muscle_rate=0.0, pop_rate=0.0)
  base = eeg.eeg_recording(5, duration_s=30.0, blink_rate=0.0, muscle_rate=0.0, pop_rate=0.0)
  assert rec["seizure_channels"] == [eeg.FOCI["right_temporal"]] and rec["annotations"] == [(10.0, 12.0, "seizure")]
  added = rec["data"].astype(np.float64) - base["data"]
  focus = [eeg.CHANNELS.index(c) for c in eeg.FOCI["right_temporal"]]
  early, late = slice(2500, 2800), slice(4000, 4300)                  # 12.5-14 s and 20-21.5 s
  rms = lambda a: np.sqrt((a ** 2).mean(-1))  # noqa: E731
  ratio = rms(added[focus, 2400:4200]) / (rec["background_uv"] * 1e-6)
  assert np.all(ratio > 0.7) and np.all(ratio < 3.2)                   # 1-3x background rms (ramps lower it)
  rest = np.setdiff1d(np.arange(len(eeg.CHANNELS)), focus)
  spread = rest[rms(added[rest, late]) > 0]
  assert len(spread) >= 1 and np.all(rms(added[spread, early]) < rms(added[spread, late]))   # spreads later
  assert rms(added[spread, late]).max() < rms(added[focus, late]).min()                     # at lower amplitude
  assert np.all(added[:, :1900] == 0) and rec["seizure_power"][:1900].max() == 0
  np.testing.assert_allclose(rec["seizure_power"], (added ** 2).sum(0), rtol=1e-3, atol=1e-16)


@pytest.mark.parametrize("cls", eeg.EVENT_CLASSES)
def test_each_event_class_adds_its_field(cls):
  base = eeg.eeg_recording(7, duration_s=8.0, blink_rate=0.0)
  rec = eeg.eeg_recording(7, duration_s=8.0, blink_rate=0.0, events=[(3.0, cls)])
  diff = np.abs(rec["data"] - base["data"])
  assert rec["annotations"] == [(3.0, 1.0, cls)]
  if cls == "bckg":
    assert diff.max() == 0
  else:
    t = np.arange(diff.shape[1]) / 200.0
    inside = (t >= 3.0) & (t < 4.0)
    assert diff[:, inside].max() > 20e-6 and diff[:, ~inside].max() < 0.2 * diff[:, inside].max()


def test_blinks_are_frontal():
  rec = eeg.eeg_recording(9, duration_s=30.0, blink_rate=0.5)
  quiet = eeg.eeg_recording(9, duration_s=30.0, blink_rate=0.0)
  d = np.abs(rec["data"] - quiet["data"]).max(1)
  assert d[eeg.CHANNELS.index("Fp1")] > 50e-6 and d[eeg.CHANNELS.index("O1")] == 0


def test_generator_is_deterministic_and_rejects_unknown_events():
  a, b = eeg.eeg_recording(4, duration_s=5.0), eeg.eeg_recording(4, duration_s=5.0)
  np.testing.assert_array_equal(a["data"], b["data"])
  with pytest.raises(ValueError, match="unknown EEG event class 'spike'"):
    eeg.eeg_recording(4, duration_s=5.0, events=[(1.0, "spike")])


def test_plans_fit_the_recording():
  rng = np.random.default_rng(0)
  plan = eeg.seizure_plan(rng, 60.0, 2)
  assert len(plan) == 2 and all(2.0 <= o and o + d <= 58.0 for o, d, _ in plan) and plan[0][0] + plan[0][1] < plan[1][0]
  events = eeg.event_plan(rng, 40.0)
  assert all(o >= 2.0 and o + 3.0 <= 40.0 for o, _ in events)


def test_generic_series_kinds():
  x = timeseries.generic_series(40, 512, seed=1)
  assert x.shape == (40, 512) and x.dtype == np.float32 and np.all(np.isfinite(x))
  np.testing.assert_array_equal(x, timeseries.generic_series(40, 512, seed=1))
  walk = x[2::4]                                           # random walks: strongly non-stationary
  lag1 = lambda r: np.corrcoef(r[:-1], r[1:])[0, 1]  # noqa: E731
  assert np.median([lag1(r) for r in walk]) > 0.95
  assert np.std([r.std() for r in x]) > 1.0               # random per-row scales


def test_pretraining_corpus_parts():
  corpus = timeseries.pretraining_corpus(8, 23, 300, seed=2)
  assert corpus["generic"].shape == (8, 300) and corpus["eeg"].shape == (23, 300)
  assert np.all(np.isfinite(corpus["eeg"])) and 1.0 < corpus["eeg"].std() < 200.0      # microvolts
  np.testing.assert_array_equal(corpus["generic"], timeseries.generic_series(8, 300, seed=2))
  assert timeseries.pretraining_corpus(4, 0, 100)["eeg"].shape == (0, 100)


def test_seizure_mimics_are_fixed_frequency_theta_bursts_at_seizure_amplitude():
  base = eeg.eeg_recording(11, duration_s=60.0)
  rec = eeg.eeg_recording(11, duration_s=60.0, mimic_rate=0.1)
  extra = (rec["data"] - base["data"]).astype(np.float64)      # mimics are drawn last: the rest is unchanged
  assert rec["mimic_power"].max() > 0 and base["mimic_power"].max() == 0
  np.testing.assert_allclose((extra ** 2).sum(0), rec["mimic_power"], rtol=1e-3, atol=1e-14)
  ch = int(np.argmax((extra ** 2).sum(1)))
  active = extra[ch] != 0
  spec = np.abs(np.fft.rfft(extra[ch])) ** 2
  f = np.fft.rfftfreq(extra.shape[1], 1 / rec["sfreq"])
  assert 3.0 <= f[np.argmax(spec)] <= 8.0
  rms = np.sqrt((extra[ch, active] ** 2).mean()) / (rec["background_uv"] * eeg.UV)
  assert 0.5 < rms < 6.0                                        # 1-3x background per burst, bursts may overlap
  assert not rec["annotations"] or all(a[2] != "seizure" for a in rec["annotations"])
