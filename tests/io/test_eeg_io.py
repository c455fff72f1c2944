"""EEG reading through MNE: pyedflib's bundled test file, filters, montages, synthetic EDF round trip, errors."""

import os

import mne
import numpy as np
import pytest
import scipy.signal

from jaxmed.io import eeg, eeg_windows
from jaxmed.synth import eeg as synth_eeg

pyedflib = pytest.importorskip("pyedflib")
GENERATOR = os.path.join(os.path.dirname(pyedflib.__file__), "data", "test_generator.edf")
GENERATOR_CHANNELS = ["squarewave", "ramp", "pulse", "noise", "sine 1 Hz", "sine 8 Hz", "sine 8.1777 Hz",
                      "sine 8.5 Hz", "sine 15 Hz", "sine 17 Hz", "sine 50 Hz"]


def _psd_at(x, sfreq, f0):
  f, p = scipy.signal.welch(x, sfreq, nperseg=int(10 * sfreq))
  return p[np.argmin(np.abs(f - f0))], f[np.argmax(p)]


def test_pyedflib_generator_channels_and_rates():
  raw = eeg.read_raw(GENERATOR)
  assert raw.ch_names == GENERATOR_CHANNELS        # pyedflib documents 11 test signals at 200 Hz, 600 s
  assert raw.info["sfreq"] == 200.0 and raw.n_times == 120000


@pytest.mark.parametrize("path", [GENERATOR, os.path.join(os.path.dirname(pyedflib.__file__), "tests", "data",
                                                        "test_generator.bdf")], ids=["edf", "bdf"])
def test_mne_reading_matches_pyedflib(path):
  raw = eeg.read_raw(path)
  with pyedflib.EdfReader(path) as ref:
    assert raw.ch_names == ref.getSignalLabels()
    rates = ref.getSampleFrequencies()
    assert raw.info["sfreq"] == rates.max()                        # mixed rates (the BDF): MNE uses the highest
    for i in np.flatnonzero(rates == rates.max())[:3]:             # MNE reads volts, pyedflib the file's uV
      np.testing.assert_allclose(raw.get_data(picks=[i])[0] * 1e6, ref.readSignal(i), rtol=1e-6, atol=1e-6)


def test_notch_removes_50_hz_by_100x():
  raw = eeg.read_raw(GENERATOR)
  before, _ = _psd_at(raw.get_data(picks=["sine 50 Hz"])[0], 200, 50)
  eeg.preprocess(raw, band=None, notch=50.0, sfreq=None)
  after, _ = _psd_at(raw.get_data(picks=["sine 50 Hz"])[0], 200, 50)
  assert before / after >= 100


def test_bandpass_and_resample_keep_8_5_and_17_hz():
  raw = eeg.read_raw(GENERATOR)
  ref = {c: _psd_at(raw.get_data(picks=[c])[0], 200, f)[0] for c, f in (("sine 8.5 Hz", 8.5), ("sine 17 Hz", 17))}
  eeg.preprocess(raw, band=(0.5, 40.0), notch=50.0, sfreq=100.0)
  assert raw.info["sfreq"] == 100.0 and raw.n_times == 60000
  for c, f in (("sine 8.5 Hz", 8.5), ("sine 17 Hz", 17.0)):
    power, peak = _psd_at(raw.get_data(picks=[c])[0], 100, f)
    assert peak == pytest.approx(f, abs=0.05) and 0.9 < power / ref[c] < 1.1


@pytest.mark.parametrize("label,name", [("EEG FP1-REF", "Fp1"), ("EEG T3-LE", "T7"), ("fz", "Fz"), ("T6", "P8"),
                                        ("EEG O2-AVG", "O2"), ("ECG", "ECG"), ("PHOTIC-REF", "PHOTIC")])
def test_standard_channel_names(label, name):
  assert eeg.standard_channel_name(label) == name


def test_synthetic_edf_round_trip(tmp_path):
  rec = synth_eeg.eeg_recording(3, duration_s=20.0, age=40.0, seizures=[(4.0, 6.5, "left_temporal")],
                                events=[(14.25, "pled")])
  path = str(tmp_path / "rec.edf")
  steps = eeg.write_edf(path, rec["data"], rec["sfreq"], rec["ch_names"], rec["annotations"], label_style="tuh")
  assert mne.io.read_raw_edf(path, verbose="error").ch_names[7] == "EEG T3-REF"      # the TUH label is on disk
  back = eeg.load_eeg(path, band=None, notch=None, sfreq=None)
  assert back.ch_names == eeg.REFERENTIAL_19 and back.sfreq == 200.0
  assert back.annotations == rec["annotations"]
  err = np.abs(back.data.astype(np.float64) - rec["data"]).max(1)
  assert np.all(err <= steps + 1e-11) and np.all(steps < 1e-8)         # within one 16-bit step (< 0.01 uV)
  tcp = eeg.load_eeg(path, montage="tcp", band=None, notch=None, sfreq=None)
  i, j = eeg.REFERENTIAL_19.index("Fp1"), eeg.REFERENTIAL_19.index("F7")
  np.testing.assert_allclose(tcp.data[0], back.data[i] - back.data[j], atol=1e-9)
  assert tcp.ch_names[0] == "Fp1-F7" and len(tcp.ch_names) == 16


def test_fif_and_brainvision_read_the_same(tmp_path):
  rec = synth_eeg.eeg_recording(1, duration_s=8.0)
  info = mne.create_info(list(rec["ch_names"]), rec["sfreq"], "eeg")
  raw = mne.io.RawArray(rec["data"].astype(np.float64), info, verbose="error")
  raw.save(tmp_path / "r_raw.fif", verbose="error")
  a = eeg.load_eeg(str(tmp_path / "r_raw.fif"), band=None, notch=None, sfreq=None)
  np.testing.assert_allclose(a.data, rec["data"], atol=1e-12)
  pytest.importorskip("pybv")
  mne.export.export_raw(str(tmp_path / "r.vhdr"), raw, fmt="brainvision", verbose="error")
  b = eeg.load_eeg(str(tmp_path / "r.vhdr"), band=None, notch=None, sfreq=None)
  np.testing.assert_allclose(b.data, rec["data"], atol=1e-9)


def test_errors_name_the_file_and_channels(tmp_path):
  with pytest.raises(eeg.EEGDataError, match="file not found"):
    eeg.load_eeg(str(tmp_path / "none.edf"))
  bad = tmp_path / "bad.edf"
  bad.write_bytes(b"0       not an edf header")
  with pytest.raises(eeg.EEGDataError, match="bad.edf: MNE could not read"):
    eeg.load_eeg(str(bad))
  with pytest.raises(eeg.EEGDataError, match="unknown EEG extension '.py'"):
    eeg.read_raw(__file__)
  rec = synth_eeg.eeg_recording(2, duration_s=6.0)
  keep = [i for i, c in enumerate(rec["ch_names"]) if c not in ("O1", "T8")]
  path = str(tmp_path / "partial.edf")
  eeg.write_edf(path, rec["data"][keep], rec["sfreq"], [rec["ch_names"][i] for i in keep])
  with pytest.raises(eeg.EEGDataError, match=r"partial.edf: the tcp montage needs channels \['O1', 'T8'\]"):
    eeg.load_eeg(path, montage="tcp")


def test_event_windows_and_labels():
  sfreq, x = 100.0, np.arange(3 * 1000, dtype=np.float32).reshape(3, 1000)
  w, padded = eeg_windows.event_windows(x, sfreq, [5.0, 0.5])
  assert w.shape == (2, 3, 500) and list(padded) == [False, True]
  np.testing.assert_array_equal(w[0], x[:, 300:800])              # event at 5 s: 3 s .. 8 s
  assert np.all(w[1, :, :150] == 0) and np.array_equal(w[1, :, 150:], x[:, :350])
  wins, starts = eeg_windows.fixed_windows(x, sfreq, 2.0, 1.0)
  assert wins.shape == (9, 3, 200) and starts[-1] == 8.0
  labels = eeg_windows.window_labels(starts, 2.0, [(3.5, 3.0, "seizure")], {"bckg": 0, "seizure": 1})
  assert list(labels) == [0, 0, 0, 1, 1, 1, 0, 0, 0]             # >= 1 s of a 2 s window overlaps 3.5-6.5 s
  with pytest.raises(eeg.EEGDataError, match="'spike'"):
    eeg_windows.window_labels(starts, 2.0, [(1, 1, "spike")], {"bckg": 0})
