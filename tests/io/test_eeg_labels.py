"""Real-data EEG paths: the channel-name rule, TUH montages, TUSZ / TUEV / LEMON label files, EEGLAB, line noise."""

import mne
import numpy as np
import pytest
import scipy.signal

from jaxmed.io import eeg, eeg_labels, eeg_windows
from jaxmed.synth import eeg as synth_eeg

pytest.importorskip("pyedflib")

# label as recorded -> (electrodes, reference) in TUH, Siena, CHB-MIT and LEMON styles
NAME_TABLE = [
    ("EEG FP1-REF", ("Fp1",), "REF"), ("EEG FZ-REF", ("Fz",), "REF"), ("EEG T3-LE", ("T7",), "LE"),   # TUH
    ("EEG A1-REF", ("A1",), "REF"), ("EEG C3-CZ", ("C3", "Cz"), None), ("EEG FZ-CZ", ("Fz", "Cz"), None),
    ("PZ-CZ", ("Pz", "Cz"), None), ("CZ-PZ", ("Cz", "Pz"), None), ("EEG LOC-REF", ("LOC",), "REF"),
    ("EEG Fp1", ("Fp1",), None), ("EEG T6", ("P8",), None), ("EKG EKG", ("EKG EKG",), None),          # Siena
    ("FP1-F7", ("Fp1", "F7"), None), ("T8-P8-0", ("T8", "P8"), None), ("FT9-FT10", ("FT9", "FT10"), None),  # CHB-MIT
    ("Fp1", ("Fp1",), None), ("FCz", ("FCz",), None), ("CP5", ("CP5",), None), ("PO10", ("PO10",), None),  # LEMON
    ("VEOG", ("VEOG",), None), ("EEG O2-AVG", ("O2",), "AVG"), ("C4-AR", ("C4",), "AR"),
]


@pytest.mark.parametrize("label,electrodes,reference", NAME_TABLE, ids=[r[0] for r in NAME_TABLE])
def test_channel_name_rule(label, electrodes, reference):
  assert eeg.parse_channel_label(label) == (electrodes, reference)
  assert eeg.standard_channel_name(label) == "-".join(electrodes)


def _tuh_file(tmp_path, name, seconds=8.0, extra=(), suffix="REF"):
  """A TUH-style EDF: the 19 electrodes plus A1/A2 as ``EEG XX-<suffix>``, plus ``extra`` (label, data) channels."""
  rec = synth_eeg.eeg_recording(5, duration_s=seconds)
  old = {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6"}
  rng = np.random.default_rng(0)
  data = np.concatenate([rec["data"], 10e-6 * rng.standard_normal((2, rec["data"].shape[1]), np.float32)])
  labels = [f"EEG {old.get(c, c).upper()}-{suffix}" for c in rec["ch_names"]] + [f"EEG A1-{suffix}",
                                                                                  f"EEG A2-{suffix}"]
  for label, x in extra:
    data = np.concatenate([data, x[None]])
    labels.append(label)
  path = str(tmp_path / name)
  eeg.write_edf(path, data, rec["sfreq"], labels)
  return path, rec


def test_a_bipolar_label_stays_a_pair_and_tcp_uses_the_referential_channels(tmp_path):
  rec = synth_eeg.eeg_recording(5, duration_s=8.0)
  decoy = 50e-6 * np.ones(rec["data"].shape[1], np.float32)           # a C3-Cz derivation that is not C3
  path, rec = _tuh_file(tmp_path, "tuh.edf", extra=[("EEG C3-CZ", decoy)])
  ref = eeg.load_eeg(path, band=None, notch=None, sfreq=None)
  c3 = eeg.REFERENTIAL_19.index("C3")
  np.testing.assert_allclose(ref.data[c3], rec["data"][c3], atol=2e-8)      # C3 is C3-REF, not the C3-CZ pair
  tcp = eeg.load_eeg(path, montage="01_tcp_ar", band=None, notch=None, sfreq=None)
  assert len(tcp.ch_names) == 22 and tcp.ch_names[8] == "A1-T7" and tcp.ch_names[10] == "C3-Cz"
  cz = eeg.REFERENTIAL_19.index("Cz")
  np.testing.assert_allclose(tcp.data[10], rec["data"][c3] - rec["data"][cz], atol=4e-8)
  assert eeg.load_eeg(path, montage="03_tcp_ar_a", band=None, notch=None, sfreq=None).data.shape[0] == 20
  with pytest.raises(eeg.EEGDataError, match=r"tuh.edf: the 02_tcp_le montage reads -LE channels"):
    eeg.load_eeg(path, montage="02_tcp_le", band=None, notch=None, sfreq=None)
  le, _ = _tuh_file(tmp_path, "le.edf", suffix="LE")
  assert eeg.load_eeg(le, montage="02_tcp_le", band=None, notch=None, sfreq=None).data.shape == tcp.data.shape


def test_recorded_pairs_make_the_montage_when_there_is_no_reference(tmp_path):
  rec = synth_eeg.eeg_recording(6, duration_s=6.0)
  idx = {c: i for i, c in enumerate(rec["ch_names"])}
  pairs = [(b, a) if i == 0 else (a, b) for i, (a, b) in enumerate(eeg.TCP_PAIRS)]    # one pair recorded reversed
  data = np.stack([rec["data"][idx[a]] - rec["data"][idx[b]] for a, b in pairs])
  path = str(tmp_path / "chbmit.edf")
  eeg.write_edf(path, data, rec["sfreq"], [f"{a.upper()}-{b.upper()}" for a, b in pairs])
  tcp = eeg.load_eeg(path, montage="tcp", band=None, notch=None, sfreq=None)
  np.testing.assert_allclose(tcp.data[0], rec["data"][idx["Fp1"]] - rec["data"][idx["F7"]], atol=5e-8)
  with pytest.raises(eeg.EEGDataError, match="the referential montage needs channels"):
    eeg.load_eeg(path, band=None, notch=None, sfreq=None)


def test_tusz_and_tuev_files_label_the_right_windows(tmp_path):
  events = [eeg_labels.ChannelEvent("Fp1-F7", 10.0, 16.0, "fnsz"), eeg_labels.ChannelEvent("T7-P7", 12.0, 20.0,
                                                                                             "fnsz")]
  eeg_labels.write_tusz_csv(str(tmp_path / "a.csv"), events, 30.0)
  text = (tmp_path / "a.csv").read_text()
  assert "FP1-F7,10.0000,16.0000,fnsz" in text and "T3-T5" in text          # TUH's spelling on disk
  back = eeg_labels.read_tusz_csv(str(tmp_path / "a.csv"))
  assert back == events
  names = ["-".join(p) for p in eeg.TUH_TCP_22]
  starts = np.arange(0.0, 26.0, 2.0)
  window, per_channel = eeg_windows.channel_window_labels(starts, 4.0, back, names, {"bckg": 0, "fnsz": 1})
  # windows [s, s + 4): a channel is positive when its seizure covers >= 2 s
  assert list(np.flatnonzero(per_channel[:, 0])) == [4, 5, 6, 7]              # Fp1-F7: 10-16 s
  assert list(np.flatnonzero(per_channel[:, 2])) == [5, 6, 7, 8, 9]           # T7-P7: 12-20 s
  assert list(np.flatnonzero(window)) == [4, 5, 6, 7, 8, 9]                   # either channel
  assert per_channel[:, [1, 3]].sum() == 0
  eeg_labels.write_tusz_csv(str(tmp_path / "a.csv_bi"), [eeg_labels.ChannelEvent("TERM", 10.0, 20.0, "seiz")], 30.)
  term = eeg_labels.read_tusz_csv(str(tmp_path / "a.csv_bi"))
  window, per_channel = eeg_windows.channel_window_labels(starts, 4.0, term, names, {"bckg": 0, "seiz": 1})
  assert list(np.flatnonzero(window)) == [4, 5, 6, 7, 8, 9] and per_channel[5].all()
  rec = [eeg_labels.ChannelEvent("C3-Cz", 3.0, 4.0, "spsw"), eeg_labels.ChannelEvent("P4-O2", 7.0, 8.0, "eyem")]
  eeg_labels.write_tuev_rec(str(tmp_path / "a.rec"), rec)
  assert (tmp_path / "a.rec").read_text().splitlines()[0] == "10,3.0000,4.0000,1"
  assert eeg_labels.read_tuev_rec(str(tmp_path / "a.rec")) == rec


@pytest.mark.parametrize("content,message", [
    ("channel,start_time,stop_time,label,confidence\nFP1-F7,1.0,x,seiz,1.0\n", r"line 2: field 'stop_time' is 'x'"),
    ("# c\nchannel,start_time,label\n", r"line 2: header lacks \['stop_time'\]"),
    ("channel,start_time,stop_time,label,confidence\nFP1-F7,5.0,2.0,seiz,1.0\n", r"line 2: fields 'start'/'stop'"),
    ("channel,start_time,stop_time,label,confidence\nFP1,1.0,2.0,seiz,1.0\n", r"line 2: field 'channel' is 'FP1'"),
], ids=["number", "header", "interval", "channel"])
def test_malformed_tusz_names_file_line_and_field(tmp_path, content, message):
  (tmp_path / "bad.csv").write_text(content)
  with pytest.raises(eeg.EEGDataError, match="bad.csv, " + message):
    eeg_labels.read_tusz_csv(str(tmp_path / "bad.csv"))


def test_malformed_tuev_and_unknown_channels(tmp_path):
  (tmp_path / "bad.rec").write_text("3,1.0,2.0,1\n30,1.0,2.0,1\n")
  with pytest.raises(eeg.EEGDataError, match=r"bad.rec, line 2: field 'channel' is 30; expected 0-21"):
    eeg_labels.read_tuev_rec(str(tmp_path / "bad.rec"))
  (tmp_path / "bad.rec").write_text("3,1.0,2.0,9\n")
  with pytest.raises(eeg.EEGDataError, match=r"line 1: field 'code' is 9"):
    eeg_labels.read_tuev_rec(str(tmp_path / "bad.rec"))
  with pytest.raises(eeg.EEGDataError, match=r"x.csv: annotation channels \['A1-T7'\] are not in the montage"):
    eeg_windows.channel_window_labels(np.zeros(1), 1.0, [("A1-T7", 0.0, 1.0, "seiz")],
                                      ["-".join(p) for p in eeg.TUH_TCP_20], {"bckg": 0, "seiz": 1}, path="x.csv")


def test_lemon_ages_and_eeglab_set(tmp_path):
  table = tmp_path / "META.csv"
  table.write_text("ID,Gender_ 1=female_2=male,Age\nsub-010002,1,20-25\nsub-010003,2,70-75\n\n")
  assert eeg_labels.read_lemon_ages(str(table)) == {"sub-010002": 22.5, "sub-010003": 72.5}
  table.write_text("ID,Age\nsub-010002,old\n")
  with pytest.raises(eeg.EEGDataError, match=r"META.csv, line 2: field 'Age' is 'old'"):
    eeg_labels.read_lemon_ages(str(table))
  pytest.importorskip("eeglabio")
  rec = synth_eeg.eeg_recording(1, duration_s=6.0, sfreq=250.0)
  raw = mne.io.RawArray(rec["data"].astype(np.float64), mne.create_info(list(rec["ch_names"]), 250.0, "eeg"),
                        verbose="error")
  mne.export.export_raw(str(tmp_path / "sub-010002.set"), raw, verbose="error")
  back = eeg.load_eeg(str(tmp_path / "sub-010002.set"), band=None, notch=None, sfreq=None)
  assert back.ch_names == eeg.REFERENTIAL_19
  np.testing.assert_allclose(back.data, rec["data"], atol=1e-9)


def _power(x, sfreq, f0):
  f, p = scipy.signal.welch(x, sfreq, nperseg=int(4 * sfreq))
  return p[..., np.argmin(np.abs(f - f0))].mean()


@pytest.mark.parametrize("mains", [60.0, 50.0])
def test_the_notch_follows_the_line_frequency(tmp_path, mains):
  rec = synth_eeg.eeg_recording(4, duration_s=20.0, sfreq=256.0)
  t = np.arange(rec["data"].shape[1]) / 256.0
  noisy = rec["data"] + (20e-6 * np.sin(2 * np.pi * mains * t)).astype(np.float32)
  path = str(tmp_path / "mains.edf")
  eeg.write_edf(path, noisy, 256.0, rec["ch_names"], label_style="tuh")
  out = eeg.load_eeg(path, band=None, sfreq=None)                              # notch="auto"
  assert out.notch == mains
  assert _power(noisy, 256.0, mains) / _power(out.data, 256.0, mains) > 100
  clean = str(tmp_path / "clean.edf")
  eeg.write_edf(clean, rec["data"], 256.0, rec["ch_names"])
  assert eeg.load_eeg(clean, band=None, sfreq=None).notch is None              # nothing to remove
  assert eeg.LINE_FREQ["tuh"] == 60.0 and eeg.LINE_FREQ["lemon"] == 50.0
