"""EEG label files: TUSZ v2 ``.csv`` / ``.csv_bi``, TUEV ``.rec`` and LEMON's age table, plus writers for tests.

- **TUSZ** (v2.0): comment lines start with ``#``, then a header
  ``channel,start_time,stop_time,label,confidence`` and one row per
  annotation. ``.csv`` rows are channel-wise (``FP1-F7``: TCP channel names);
  ``.csv_bi`` rows are term-based with channel ``TERM`` (every channel) and
  labels ``bckg`` / ``seiz``. Channel-wise seizure types (``fnsz``, ``gnsz``,
  ``cpsz``...) are kept as written; a caller maps them to classes.
- **TUEV** ``.rec``: rows ``channel,start,stop,code`` without a header; the
  channel is an index into TUH's 22-channel TCP montage
  (:data:`jaxmed.io.eeg.TUH_TCP_22`) and the codes 1-6 are
  :data:`TUEV_CODES` (spsw, gped, pled, eyem, artf, bckg).
- **LEMON** (MPI Leipzig Mind-Brain-Body): the participants table
  ``META_File_IDs_Age_Gender_Education_Drug_Smoke_SKID_LPS_2020.csv`` gives
  ages as 5-year bins (``"20-25"``); :func:`read_lemon_ages` returns each
  subject's bin midpoint.

Every event is a :class:`ChannelEvent` with 10-10 channel names
(``"Fp1-F7"``, or ``"TERM"``); a malformed file raises one
:class:`jaxmed.io.eeg.EEGDataError` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import os
from typing import NamedTuple, Sequence

from jaxmed.io.eeg import TUH_TCP_22, EEGDataError, parse_channel_label

TUEV_CODES = {1: "spsw", 2: "gped", 3: "pled", 4: "eyem", 5: "artf", 6: "bckg"}
TUSZ_COLUMNS = ("channel", "start_time", "stop_time", "label", "confidence")
TERM = "TERM"


class ChannelEvent(NamedTuple):
  """One annotation: ``channel`` (a 10-10 bipolar name or ``"TERM"``), ``start`` / ``stop`` seconds, ``label``."""
  channel: str
  start: float
  stop: float
  label: str
  confidence: float = 1.0


def _lines(path: str) -> list[str]:
  if not os.path.exists(path):
    raise EEGDataError(f"{path}: file not found")
  with open(path, newline="") as f:
    return f.read().splitlines()


def _number(path: str, line: int, field: str, text: str, kind=float):
  try:
    return kind(text.strip())
  except ValueError:
    raise EEGDataError(f"{path}, line {line}: field {field!r} is {text!r}; expected a number") from None


def _channel(path: str, line: int, text: str) -> str:
  text = text.strip()
  if text.upper() == TERM:
    return TERM
  electrodes, _ = parse_channel_label(text)
  if len(electrodes) != 2:
    raise EEGDataError(f"{path}, line {line}: field 'channel' is {text!r}; expected a bipolar pair such as "
                       f"'FP1-F7' or 'TERM'")
  return "-".join(electrodes)


def _interval(path: str, line: int, start: float, stop: float) -> None:
  if not 0 <= start < stop:
    raise EEGDataError(f"{path}, line {line}: fields 'start'/'stop' are {start}, {stop}; expected 0 <= start < stop")


def read_tusz_csv(path: str) -> list[ChannelEvent]:
  """The annotations of a TUSZ v2 ``.csv`` (channel-wise) or ``.csv_bi`` (``TERM``) file, in file order."""
  rows = [(i + 1, s) for i, s in enumerate(_lines(path)) if s.strip() and not s.lstrip().startswith("#")]
  if not rows:
    raise EEGDataError(f"{path}: no header; expected {','.join(TUSZ_COLUMNS)}")
  header_line, header = rows[0]
  columns = [c.strip().lower() for c in next(csv.reader([header]))]
  missing = [c for c in TUSZ_COLUMNS[:4] if c not in columns]
  if missing:
    raise EEGDataError(f"{path}, line {header_line}: header lacks {missing}; expected {','.join(TUSZ_COLUMNS)}")
  at = {c: columns.index(c) for c in TUSZ_COLUMNS if c in columns}
  events = []
  for line, text in rows[1:]:
    cells = next(csv.reader([text]))
    if len(cells) < len(columns):
      raise EEGDataError(f"{path}, line {line}: {len(cells)} fields; expected {len(columns)} ({','.join(columns)})")
    start = _number(path, line, "start_time", cells[at["start_time"]])
    stop = _number(path, line, "stop_time", cells[at["stop_time"]])
    _interval(path, line, start, stop)
    label = cells[at["label"]].strip().lower()
    if not label:
      raise EEGDataError(f"{path}, line {line}: field 'label' is empty")
    conf = _number(path, line, "confidence", cells[at["confidence"]]) if "confidence" in at else 1.0
    events.append(ChannelEvent(_channel(path, line, cells[at["channel"]]), start, stop, label, conf))
  return events


def read_tuev_rec(path: str, montage: Sequence[tuple[str, str]] = TUH_TCP_22) -> list[ChannelEvent]:
  """The events of a TUEV ``.rec`` file (``channel index, start, stop, code``), channels named by ``montage``."""
  events = []
  for i, text in enumerate(_lines(path)):
    if not text.strip():
      continue
    cells = text.split(",")
    if len(cells) != 4:
      raise EEGDataError(f"{path}, line {i + 1}: {len(cells)} fields; expected 4 (channel,start,stop,code)")
    ch = _number(path, i + 1, "channel", cells[0], int)
    if not 0 <= ch < len(montage):
      raise EEGDataError(f"{path}, line {i + 1}: field 'channel' is {ch}; expected 0-{len(montage) - 1} (TCP index)")
    start, stop = (_number(path, i + 1, f, c) for f, c in (("start", cells[1]), ("stop", cells[2])))
    _interval(path, i + 1, start, stop)
    code = _number(path, i + 1, "code", cells[3], lambda s: int(float(s)))
    if code not in TUEV_CODES:
      raise EEGDataError(f"{path}, line {i + 1}: field 'code' is {code}; expected one of {sorted(TUEV_CODES)}")
    events.append(ChannelEvent("-".join(montage[ch]), start, stop, TUEV_CODES[code]))
  return events


def write_tusz_csv(path: str, events: Sequence[ChannelEvent], duration_s: float) -> None:
  """Writes events in TUSZ v2 layout (``TERM`` events make a ``.csv_bi``; channel names in TUH's old spelling)."""
  old = {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6"}
  with open(path, "w", newline="") as f:
    f.write(f"# version = csv_v1.0.0\n# bname = {os.path.splitext(os.path.basename(path))[0]}\n"
            f"# duration = {duration_s:.2f} secs\n#\n")
    f.write(",".join(TUSZ_COLUMNS) + "\n")
    for e in events:
      ch = e.channel if e.channel == TERM else "-".join(old.get(p, p).upper() for p in e.channel.split("-"))
      f.write(f"{ch},{e.start:.4f},{e.stop:.4f},{e.label},{e.confidence:.4f}\n")


def write_tuev_rec(path: str, events: Sequence[ChannelEvent], montage: Sequence[tuple[str, str]] = TUH_TCP_22):
  """Writes events as a TUEV ``.rec`` (channels by their index in ``montage``)."""
  names = ["-".join(p) for p in montage]
  codes = {v: k for k, v in TUEV_CODES.items()}
  with open(path, "w") as f:
    for e in events:
      f.write(f"{names.index(e.channel)},{e.start:.4f},{e.stop:.4f},{codes[e.label]}\n")


def read_lemon_ages(path: str) -> dict[str, float]:
  """``{subject ID: age}`` from LEMON's participants table: the ``ID`` and ``Age`` columns, ages as ``"20-25"``
  bins (the midpoint is returned) or plain numbers."""
  lines = _lines(path)
  rows = list(csv.reader(lines))
  if not rows:
    raise EEGDataError(f"{path}: empty; expected columns ID and Age")
  header = [c.strip() for c in rows[0]]
  if "ID" not in header or "Age" not in header:
    raise EEGDataError(f"{path}, line 1: header {header} lacks 'ID' or 'Age'")
  i_id, i_age = header.index("ID"), header.index("Age")
  ages = {}
  for n, cells in enumerate(rows[1:], start=2):
    if not any(c.strip() for c in cells):
      continue
    if len(cells) <= max(i_id, i_age):
      raise EEGDataError(f"{path}, line {n}: {len(cells)} fields; expected at least {max(i_id, i_age) + 1}")
    text = cells[i_age].strip()
    bounds = text.split("-")
    if len(bounds) == 2:
      lo, hi = (_number(path, n, "Age", b) for b in bounds)
      ages[cells[i_id].strip()] = (lo + hi) / 2
    else:
      ages[cells[i_id].strip()] = _number(path, n, "Age", text)
  return ages
