"""EEG recordings through MNE: EDF, BDF, FIF, BrainVision and EEGLAB, with 10-10 channel names, a montage and
filtering.

``load_eeg(path, montage=..., band=(0.5, 40), notch="auto", sfreq=100)``:

1. read the file with MNE (``.edf``, ``.bdf``, ``.fif``/``.fif.gz``, ``.vhdr``, ``.set``);
2. parse each label by one rule (:func:`parse_channel_label`): the ``EEG``
   prefix and a reference suffix (``-REF``, ``-LE``, ``-AR``, ``-AVG``) go,
   a bipolar ``A-B`` stays a pair (``"EEG C3-CZ"`` -> ``"C3-Cz"``), names get
   their 10-10 spelling (``"FP1"`` -> ``"Fp1"``; the old temporal names
   T3/T4/T5/T6 -> T7/T8/P7/P8, as the TUH corpus still uses them);
3. select the montage (:data:`MONTAGE_CHANNELS`): the 19 referential 10-20
   channels, the 16-channel TCP double banana that BIOT uses, or TUH's
   ``01_tcp_ar`` / ``02_tcp_le`` (22 channels) and ``03_tcp_ar_a`` (20);
   a bipolar channel is read as recorded or derived from two referential ones;
4. notch (MNE FIR notch at the line frequency and its harmonics below
   Nyquist: the recording's own, a dataset preset's, see :data:`LINE_FREQ`),
   band-pass (MNE zero-phase FIR) and resample (MNE polyphase) to ``sfreq``.

Every failure (missing file, unreadable file, unknown extension, duplicate
or missing channels, the wrong reference for a TUH montage) is one
:class:`EEGDataError` naming the file and the channels. Data are returned in
volts, ``[C, T]`` float32.
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
# TUH's 22-channel TCP montage (NEDC montage files 01_tcp_ar / 02_tcp_le, channel index = position): the two
# temporal chains, the central chain A1-T3 ... T4-A2, then the two parasagittal chains. TUEV's .rec files and
# TUSZ's channel-wise .csv files index and name channels by it. 03_tcp_ar_a drops A1-T3 and T4-A2 (20 channels).
TUH_TCP_22 = (("Fp1", "F7"), ("F7", "T7"), ("T7", "P7"), ("P7", "O1"), ("Fp2", "F8"), ("F8", "T8"), ("T8", "P8"),
              ("P8", "O2"), ("A1", "T7"), ("T7", "C3"), ("C3", "Cz"), ("Cz", "C4"), ("C4", "T8"), ("T8", "A2"),
              ("Fp1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"), ("Fp2", "F4"), ("F4", "C4"), ("C4", "P4"),
              ("P4", "O2"))
TUH_TCP_20 = tuple(p for p in TUH_TCP_22 if "A1" not in p and "A2" not in p)
# montage -> (channels: an electrode name or a bipolar pair each, the reference the source channels must carry)
MONTAGE_CHANNELS = {"referential": (REFERENTIAL_19, None), "tcp": (TCP_PAIRS, None),
                    "01_tcp_ar": (TUH_TCP_22, "REF"), "02_tcp_le": (TUH_TCP_22, "LE"), "03_tcp_ar_a": (TUH_TCP_20, "REF")}
MONTAGES = tuple(MONTAGE_CHANNELS)
# the recording site's mains frequency per dataset: the notch default of a dataset preset
LINE_FREQ = {"tuh": 60.0, "chbmit": 60.0, "siena": 50.0, "lemon": 50.0}
REFERENCE_SUFFIXES = ("REF", "LE", "AR", "AVG")
_OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
_ELECTRODE = re.compile(r"^(FP|AF|FC|FT|CP|TP|PO|F|C|T|P|O|I|A|M)(\d{1,2}|Z)$")
_EXTENSIONS = {".edf": "read_raw_edf", ".bdf": "read_raw_bdf", ".fif": "read_raw_fif", ".gz": "read_raw_fif",
               ".vhdr": "read_raw_brainvision", ".set": "read_raw_eeglab"}


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
  notch: float | None = None


def read_raw(path: str):
  """The file as a preloaded ``mne.io.Raw`` (extension picks the reader)."""
  import mne
  if not os.path.exists(path):
    raise EEGDataError(f"{path}: file not found")
  ext = os.path.splitext(path)[1].lower()
  if ext not in _EXTENSIONS:
    raise EEGDataError(f"{path}: unknown EEG extension {ext!r}; expected one of .edf, .bdf, .fif, .fif.gz, .vhdr, "
                       ".set")
  try:
    return getattr(mne.io, _EXTENSIONS[ext])(path, preload=True, verbose="error")
  except Exception as e:  # truncated header, wrong format behind the extension
    raise EEGDataError(f"{path}: MNE could not read it as {ext} ({type(e).__name__}: {e})") from e


def electrode_name(token: str) -> str | None:
  """The 10-10 spelling of one electrode token (``FP1`` -> ``Fp1``, ``FCZ`` -> ``FCz``, ``T3`` -> ``T7``), or None.

  An electrode is a 10-10 prefix (Fp, AF, F, FC, FT, C, CP, T, TP, P, PO, O, I, plus the ear/mastoid A, M)
  followed by a number or z.
  """
  m = _ELECTRODE.match(token.strip().upper())
  if m is None:
    return None
  upper = _OLD_NAMES.get(m.group(0), m.group(0))
  m = _ELECTRODE.match(upper)
  return ("Fp" if m.group(1) == "FP" else m.group(1)) + m.group(2).replace("Z", "z")


def parse_channel_label(label: str) -> tuple[tuple[str, ...], str | None]:
  """``(electrodes, reference)`` of a recorded channel label, by one explicit rule.

  The ``EEG`` prefix goes; a trailing reference suffix (only ``-REF``, ``-LE``, ``-AR``, ``-AVG``) is stripped and
  returned; what is left is one electrode (``("Fz",)``) or, when it is ``A-B`` with two electrodes, a bipolar pair
  (``("C3", "Cz")``, so ``EEG C3-CZ`` stays a derivation). CHB-MIT's duplicate tags (``T8-P8-0``) are dropped from
  pairs. Anything else comes back as ``((stripped label,), reference)`` and is not an electrode.
  """
  name = re.sub(r"^EEG[\s_:]*", "", label.strip(), flags=re.IGNORECASE).strip()
  reference = None
  m = re.match(r"^(.*?)[\s_]*-[\s_]*(" + "|".join(REFERENCE_SUFFIXES) + r")$", name, flags=re.IGNORECASE)
  if m:
    name, reference = m.group(1).strip(), m.group(2).upper()
  single = electrode_name(name)
  if single:
    return (single,), reference
  parts = re.sub(r"-\d+$", "", name).split("-")
  if len(parts) == 2 and all(electrode_name(p) for p in parts):
    return tuple(electrode_name(p) for p in parts), reference
  return (name,), reference


def standard_channel_name(label: str) -> str:
  """The 10-10 name of a recorded label (``"EEG FP1-REF"`` -> ``"Fp1"``, ``"EEG C3-CZ"`` -> ``"C3-Cz"``), or the
  stripped label when it is not an EEG electrode (:func:`parse_channel_label` gives the rule)."""
  return "-".join(parse_channel_label(label)[0])


def _is_eeg_name(name: str) -> bool:
  return all(electrode_name(p) == p for p in name.split("-"))


def normalise_channel_names(raw, path: str = "") -> dict[str, str]:
  """Renames ``raw``'s EEG channels in place to 10-10 names; returns ``{old: new}`` for every EEG channel.

  Labels that are not electrodes or pairs of electrodes keep their names. Two labels that map to the same name
  (``"EEG FP1-REF"`` and ``"Fp1"``) are an error naming both, except MNE's tags for a label the file repeats
  (CHB-MIT's ``T8-P8-0``, ``T8-P8-1``): the first is renamed, the others keep their tags.
  """
  rename, owner, mapping = {}, {}, {}
  for old in raw.ch_names:
    new = standard_channel_name(old)
    if not _is_eeg_name(new):
      continue
    if new in owner and re.search(r"-\d+$", old):   # MNE tags duplicate labels -0, -1: the first one is kept
      continue
    if new in owner:
      raise EEGDataError(f"{path}: channels {owner[new]!r} and {old!r} both map to the 10-10 name {new!r}")
    owner[new], mapping[old] = old, new
    if new != old:
      rename[old] = new
  raw.rename_channels(rename, verbose="error")
  return mapping


def montage_data(raw, montage: str, path: str = "", references: dict[str, str | None] | None = None
                 ) -> tuple[np.ndarray, tuple[str, ...]]:
  """``[C, T]`` volts for the montage's channels, from a raw with 10-10 names.

  A bipolar channel ``A-B`` is the difference of the referential ``A`` and ``B`` when the file has both, else
  the recorded derivation ``A-B`` (``B-A`` negated; CHB-MIT records pairs). ``references`` (``{name: suffix}``, from the labels) is checked against the
  TUH montage's reference (01_tcp_ar and 03_tcp_ar_a read ``-REF`` channels, 02_tcp_le ``-LE``).
  """
  if montage not in MONTAGE_CHANNELS:
    raise EEGDataError(f"{path}: montage must be one of {MONTAGES}; got {montage!r}")
  channels, want_ref = MONTAGE_CHANNELS[montage]
  have = set(raw.ch_names)
  plan, missing = [], []
  for ch in channels:
    if isinstance(ch, str):
      plan.append(((ch, 1.0),)) if ch in have else missing.append(ch)
    elif ch[0] in have and ch[1] in have:
      plan.append(((ch[0], 1.0), (ch[1], -1.0)))
    elif f"{ch[0]}-{ch[1]}" in have:
      plan.append(((f"{ch[0]}-{ch[1]}", 1.0),))
    elif f"{ch[1]}-{ch[0]}" in have:
      plan.append(((f"{ch[1]}-{ch[0]}", -1.0),))
    else:
      missing += [c for c in ch if c not in have and c not in missing]
  if missing:
    raise EEGDataError(f"{path}: the {montage} montage needs channels {missing}, which are missing; found "
                       f"{list(raw.ch_names)}")
  used = sorted({name for terms in plan for name, _ in terms})
  if want_ref and references is not None:
    wrong = [f"{n} (-{references.get(n)})" for n in used if "-" not in n and references.get(n) != want_ref]
    if wrong:
      raise EEGDataError(f"{path}: the {montage} montage reads -{want_ref} channels; these are not: {wrong}")
  x = raw.get_data(picks=used)
  index = {c: i for i, c in enumerate(used)}
  out = np.stack([sum(sign * x[index[name]] for name, sign in terms) for terms in plan])
  names = tuple(c if isinstance(c, str) else f"{c[0]}-{c[1]}" for c in channels)
  return out.astype(np.float32), names


def line_frequency(raw, *, min_ratio: float = 10.0) -> float | None:
  """The mains frequency of a recording: ``info["line_freq"]`` when the file sets it (FIF, BrainVision with
  MNE-BIDS), else 50 or 60 Hz when the spectrum has a peak there ``min_ratio`` times its 46-54 / 56-64 Hz
  neighbourhood median (EDF carries no line frequency), else None (no line noise to remove)."""
  if raw.info.get("line_freq"):
    return float(raw.info["line_freq"])
  import scipy.signal
  sfreq = raw.info["sfreq"]
  x = raw.get_data(picks="eeg" if "eeg" in raw.get_channel_types() else "all")
  f, p = scipy.signal.welch(x, sfreq, nperseg=min(x.shape[1], int(4 * sfreq)))
  p = p.mean(0)
  best, best_ratio = None, min_ratio
  for f0 in (50.0, 60.0):
    if f0 >= sfreq / 2 - 1:
      continue
    peak = p[np.abs(f - f0) <= 0.5].max()
    around = np.median(p[(np.abs(f - f0) > 1.5) & (np.abs(f - f0) <= 4.0)])
    if peak / (around + 1e-30) > best_ratio:
      best, best_ratio = f0, peak / (around + 1e-30)
  return best


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
             notch: float | str | None = "auto", sfreq: float | None = 100.0) -> EEGRecording:
  """Read, rename, filter, resample and montage one recording (module docstring).

  ``notch``: a frequency (Hz; a dataset preset's :data:`LINE_FREQ`), None for no notch, or ``"auto"``: the
  recording's own line frequency (:func:`line_frequency`; no notch when it has no line noise). The notch used is
  returned in ``EEGRecording.notch``.
  """
  raw = read_raw(path)
  mapping = normalise_channel_names(raw, path)
  references = {new: parse_channel_label(old)[1] for old, new in mapping.items()}
  montage_data(raw, montage, path, references)         # fail on missing channels before filtering
  if notch == "auto":
    notch = line_frequency(raw)
  elif isinstance(notch, str):
    raise EEGDataError(f"{path}: notch must be a frequency in Hz, None or 'auto'; got {notch!r}")
  preprocess(raw, band=band, notch=notch, sfreq=sfreq)
  data, names = montage_data(raw, montage, path)
  annotations = [(float(a["onset"]), float(a["duration"]), str(a["description"])) for a in raw.annotations]
  return EEGRecording(data, float(raw.info["sfreq"]), names, annotations, path, notch)


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
