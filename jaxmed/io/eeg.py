"""EEG recordings through MNE: EDF, BDF, FIF and BrainVision, with 10-20 channel names, a montage and filtering.

``load_eeg(path, montage="referential" | "tcp", band=(0.5, 40), notch=50, sfreq=100)``:

1. read the file with MNE (``.edf``, ``.bdf``, ``.fif``/``.fif.gz``, ``.vhdr``);
2. rename the EEG channels to 10-20 names (``"EEG FP1-REF"``, ``"FP1-LE"``,
   ``"fp1"`` -> ``"Fp1"``; the old temporal names T3/T4/T5/T6 -> T7/T8/P7/P8,
   as the TUH corpus still uses them);
3. select the montage: the 19 referential 10-20 channels, or the 16-channel
   temporal central parasagittal (TCP) double banana that TUH/BIOT use
   (each channel the difference of two referential ones);
4. notch (MNE FIR notch at ``notch`` Hz and its harmonics below Nyquist),
   band-pass (MNE zero-phase FIR) and resample (MNE polyphase) to ``sfreq``.

Every failure (missing file, unreadable file, unknown extension, duplicate
or missing channels) is one :class:`EEGDataError` naming the file and the
channels. Data are returned in volts, ``[C, T]`` float32.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Sequence

import numpy as np

REFERENTIAL_19 = ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "Pz", "P4",
                  "P8", "O1", "O2")
# the TCP double banana as TUH/BIOT order it: left temporal, right temporal, left and right parasagittal chains
TCP_PAIRS = (("Fp1", "F7"), ("F7", "T7"), ("T7", "P7"), ("P7", "O1"), ("Fp2", "F8"), ("F8", "T8"), ("T8", "P8"),
             ("P8", "O2"), ("Fp1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"), ("Fp2", "F4"), ("F4", "C4"),
             ("C4", "P4"), ("P4", "O2"))
TCP_NAMES = tuple(f"{a}-{b}" for a, b in TCP_PAIRS)
MONTAGES = ("referential", "tcp")
_OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
_CANONICAL = {n.upper(): n for n in REFERENTIAL_19 + ("A1", "A2", "Fpz", "Oz", "AFz", "FCz", "CPz", "POz")}
_EXTENSIONS = {".edf": "read_raw_edf", ".bdf": "read_raw_bdf", ".fif": "read_raw_fif", ".gz": "read_raw_fif",
               ".vhdr": "read_raw_brainvision"}


class EEGDataError(ValueError):
  """An EEG file is missing, unreadable, or lacks the channels a montage needs."""


@dataclasses.dataclass
class EEGRecording:
  """``data [C, T]`` volts at ``sfreq`` Hz; ``annotations``: ``(onset_s, duration_s, description)`` tuples."""
  data: np.ndarray
  sfreq: float
  ch_names: tuple[str, ...]
  annotations: list[tuple[float, float, str]]
  path: str = ""


def read_raw(path: str):
  """The file as a preloaded ``mne.io.Raw`` (extension picks the reader)."""
  import mne
  if not os.path.exists(path):
    raise EEGDataError(f"{path}: file not found")
  ext = os.path.splitext(path)[1].lower()
  if ext not in _EXTENSIONS:
    raise EEGDataError(f"{path}: unknown EEG extension {ext!r}; expected one of .edf, .bdf, .fif, .fif.gz, .vhdr")
  try:
    return getattr(mne.io, _EXTENSIONS[ext])(path, preload=True, verbose="error")
  except Exception as e:  # truncated header, wrong format behind the extension
    raise EEGDataError(f"{path}: MNE could not read it as {ext} ({type(e).__name__}: {e})") from e


def standard_channel_name(label: str) -> str:
  """A 10-20 name for a recorded label, or the stripped label when it is not an EEG electrode.

  Drops an ``EEG`` prefix and a reference suffix (``-REF``, ``-LE``, ``-AR``,
  ``-AVG``, ``-M1``...), fixes the case (``FP1`` -> ``Fp1``) and maps the old
  temporal names.
  """
  name = re.sub(r"^(EEG)[\s_:-]*", "", label.strip(), flags=re.IGNORECASE)
  name = re.sub(r"[\s_]*-[\s_]*(REF|LE|AR|AVG|M1|M2|A1|A2|CZ)$", "", name, flags=re.IGNORECASE).strip()
  upper = name.upper()
  upper = _OLD_NAMES.get(upper, upper)
  return _CANONICAL.get(upper, name)


def normalise_channel_names(raw, path: str = "") -> dict[str, str]:
  """Renames ``raw``'s EEG channels in place to 10-20 names; returns ``{old: new}`` of the renamed ones.

  Labels that are not 10-20 electrodes keep their names. Two labels that map
  to the same electrode (``"EEG FP1-REF"`` and ``"Fp1"``) are an error.
  """
  rename, owner = {}, {}
  for old in raw.ch_names:
    new = standard_channel_name(old)
    if new not in _CANONICAL.values():
      continue
    if new in owner:
      raise EEGDataError(f"{path}: channels {owner[new]!r} and {old!r} both map to the 10-20 name {new!r}")
    owner[new] = old
    if new != old:
      rename[old] = new
  raw.rename_channels(rename, verbose="error")
  return rename


def montage_data(raw, montage: str, path: str = "") -> tuple[np.ndarray, tuple[str, ...]]:
  """``[C, T]`` volts for the montage's channels, from a raw with 10-20 names."""
  if montage not in MONTAGES:
    raise EEGDataError(f"{path}: montage must be one of {MONTAGES}; got {montage!r}")
  need = REFERENTIAL_19 if montage == "referential" else tuple(sorted({c for p in TCP_PAIRS for c in p}))
  missing = [c for c in need if c not in raw.ch_names]
  if missing:
    raise EEGDataError(f"{path}: the {montage} montage needs channels {missing}, which are missing; found "
                       f"{list(raw.ch_names)}")
  x = raw.get_data(picks=list(need))
  index = {c: i for i, c in enumerate(need)}
  if montage == "referential":
    return x.astype(np.float32), REFERENTIAL_19
  bipolar = np.stack([x[index[a]] - x[index[b]] for a, b in TCP_PAIRS])
  return bipolar.astype(np.float32), TCP_NAMES


def preprocess(raw, *, band: tuple[float, float] | None = (0.5, 40.0), notch: float | None = 50.0,
               sfreq: float | None = 100.0):
  """Notch, band-pass and resample ``raw`` in place (EEG and misc channels); returns it.

  The notch removes ``notch`` and its harmonics below Nyquist. Order: notch,
  band-pass, resample (the band-pass is the anti-aliasing low-pass when
  ``band[1] < sfreq / 2``; MNE's resample adds its own).
  """
  picks = "all"
  nyq = raw.info["sfreq"] / 2
  if notch:
    freqs = np.arange(notch, nyq, notch)
    if len(freqs):
      raw.notch_filter(freqs, picks=picks, verbose="error")
  if band is not None:
    raw.filter(band[0], min(band[1], nyq * 0.99) if band[1] else None, picks=picks, verbose="error")
  if sfreq and abs(raw.info["sfreq"] - sfreq) > 1e-6:
    raw.resample(sfreq, verbose="error")
  return raw


def load_eeg(path: str, *, montage: str = "referential", band: tuple[float, float] | None = (0.5, 40.0),
             notch: float | None = 50.0, sfreq: float | None = 100.0) -> EEGRecording:
  """Read, rename, filter, resample and montage one recording (module docstring)."""
  raw = read_raw(path)
  normalise_channel_names(raw, path)
  montage_data(raw, montage, path)                     # fail on missing channels before filtering
  preprocess(raw, band=band, notch=notch, sfreq=sfreq)
  data, names = montage_data(raw, montage, path)
  annotations = [(float(a["onset"]), float(a["duration"]), str(a["description"])) for a in raw.annotations]
  return EEGRecording(data, float(raw.info["sfreq"]), names, annotations, path)


def write_edf(path: str, data: np.ndarray, sfreq: float, ch_names: Sequence[str],
              annotations: Sequence[tuple[float, float, str]] = (), *, label_style: str = "plain") -> np.ndarray:
  """Writes ``data [C, T]`` (volts) as EDF+ (16-bit, microvolts) with annotations; returns ``[C]`` steps (V).

  ``label_style="tuh"`` writes labels the way the TUH corpus does
  (``"EEG FP1-REF"``, old temporal names), so readers exercise
  :func:`normalise_channel_names`. Each channel gets a symmetric physical
  range 10% above its peak (rounded up to a whole uV); the returned per-channel quantisation step
  ``(pmax - pmin) / 65535`` bounds the round-trip error (pyedflib truncates
  to the digital grid, so the bound is one step rather than half).
  """
  import pyedflib
  data = np.asarray(data, np.float64) / 1e-6
  if data.ndim != 2 or data.shape[0] != len(ch_names):
    raise EEGDataError(f"{path}: data must be [C, T] with C = {len(ch_names)} channel names; got {data.shape}")
  if abs(sfreq - round(sfreq)) > 1e-9:
    raise EEGDataError(f"{path}: write_edf needs an integer sampling rate; got {sfreq}")
  old = {v: k for k, v in _OLD_NAMES.items()}
  labels = [f"EEG {old.get(c, c).upper()}-REF" if label_style == "tuh" else c for c in ch_names]
  peaks = np.ceil(np.maximum(np.abs(data).max(1) * 1.1, 1.0))   # whole uV: EDF keeps 8 characters
  headers = [{"label": lab, "dimension": "uV", "sample_frequency": float(sfreq), "physical_max": float(p),
              "physical_min": float(-p), "digital_max": 32767, "digital_min": -32768, "prefilter": "",
              "transducer": ""} for lab, p in zip(labels, peaks)]
  writer = pyedflib.EdfWriter(path, len(ch_names), file_type=pyedflib.FILETYPE_EDFPLUS)
  try:
    writer.setSignalHeaders(headers)
    writer.writeSamples(list(data))
    for onset, duration, description in annotations:
      writer.writeAnnotation(float(onset), float(duration), str(description))
  finally:
    writer.close()
  return 2 * peaks / 65535 * 1e-6
