"""The study's cohorts as files: synthetic EDF+ recordings plus BIDS-like sidecars, read back through jaxmed.io.

``write_cohorts`` writes ``<workdir>/edf/{age,seizure,events}/{train,test}/*.edf``
(TUH-style channel labels, 200 Hz; event annotations in EDF+), TUSZ v2 label
files for the seizure recordings (``.csv_bi`` term-based, ``.csv`` per TCP
channel; the seizure windows are labelled from the ``.csv_bi``),
``participants.tsv`` (age per recording) and ``seizures.tsv`` (onset,
duration and focus electrodes per seizure, for localisation). ``read_cohorts`` loads every file with
:func:`jaxmed.io.eeg.load_eeg` (montage, notch, band-pass, resampling), so
the experiment sees what a user's EDFs would give. A user's own cohort in
the same layout runs through ``read_cohorts`` unchanged.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from jaxmed.io import eeg as eeg_io
from jaxmed.io import eeg_labels, eeg_windows
from jaxmed.synth import eeg as synth_eeg

TASK_CLASSES = {"seizure": {"bckg": 0, "seizure": 1},
                "events": {c: i for i, c in enumerate(synth_eeg.EVENT_CLASSES)}}


def _split_seed(seed: int, task: str, split: str) -> int:
  return seed * 10000 + {"age": 1, "seizure": 2, "events": 3}[task] * 1000 + (0 if split == "train" else 500)


def recording(config, task: str, split: str, i: int) -> dict:
  """The ``i``-th synthetic recording of a task's split (deterministic: the oracle regenerates it).

  Adds ``plan`` (the seizure or event plan) to :func:`jaxmed.synth.eeg.eeg_recording`'s dict.
  """
  d = config.data
  rng = np.random.default_rng(_split_seed(config.seed, task, split) + i)
  age = float(np.round(rng.uniform(20, 80), 1))
  if task == "seizure":
    plan = synth_eeg.seizure_plan(rng, d.seizure_duration_s, d.seizures_per_recording)
  elif task == "events":
    plan = synth_eeg.event_plan(rng, d.event_duration_s)
  else:
    plan = []
  # the signal gets its own stream: seeding it with the seed that drew the age replays the age's uniform as the
  # background rms (an earlier version did, and a CNN read age off the amplitude)
  kw = {"age": age, "sfreq": float(d.file_sfreq), "mimic_rate": float(d.mimic_rate),
        "duration_s": d[f"{'event' if task == 'events' else task}_duration_s"]}
  if task == "seizure":
    kw["seizures"] = plan
  elif task == "events":
    kw["events"] = plan
  return synth_eeg.eeg_recording(int(rng.integers(2 ** 31)), **kw) | {"plan": plan}


def _tusz_events(plan) -> list:
  """A seizure plan as TUSZ v2 channel-wise events: every TCP channel with an electrode in the focus."""
  events = []
  for onset, duration, focus in plan:
    for a, b in eeg_io.TUH_TCP_22:
      if a in synth_eeg.FOCI[focus] or b in synth_eeg.FOCI[focus]:
        events.append(eeg_labels.ChannelEvent(f"{a}-{b}", onset, onset + duration, "seiz"))
  return events


def write_cohorts(config, root: str) -> None:
  """Writes every recording that is not on disk yet (a rerun reuses them). Seizure recordings get TUSZ v2 label
  files beside them: ``recNNNN.csv_bi`` (term-based) and ``recNNNN.csv`` (channel-wise, TCP channels)."""
  d = config.data
  for task in ("age", "seizure", "events"):
    for split in ("train", "test"):
      folder = os.path.join(root, task, split)
      if os.path.exists(os.path.join(folder, "participants.tsv")):
        continue
      os.makedirs(folder, exist_ok=True)
      n = d[f"{'event' if task == 'events' else task}_{split}"]
      rows, seizure_rows = [], []
      for i in range(n):
        rec = recording(config, task, split, i)
        name = f"rec{i:04d}"
        if task == "seizure":
          seizure_rows += [(name, o, dur, "/".join(synth_eeg.FOCI[f])) for o, dur, f in rec["plan"]]
          duration = rec["data"].shape[1] / rec["sfreq"]
          eeg_labels.write_tusz_csv(os.path.join(folder, name + ".csv_bi"), [
              eeg_labels.ChannelEvent("TERM", o, o + dur, "seiz") for o, dur, _ in rec["plan"]], duration)
          eeg_labels.write_tusz_csv(os.path.join(folder, name + ".csv"), _tusz_events(rec["plan"]), duration)
        eeg_io.write_edf(os.path.join(folder, name + ".edf"), rec["data"], rec["sfreq"], rec["ch_names"],
                         [a for a in rec["annotations"] if a[2] != "seizure"], label_style="tuh")
        rows.append((name, rec["age"]))
      if task == "seizure":
        _write_tsv(os.path.join(folder, "seizures.tsv"), ("recording", "onset", "duration", "channels"), seizure_rows)
      _write_tsv(os.path.join(folder, "participants.tsv"), ("recording", "age"), rows)   # last: marks complete


def _write_tsv(path, header, rows):
  with open(path, "w", newline="") as f:
    w = csv.writer(f, delimiter="\t")
    w.writerow(header)
    w.writerows(rows)


def _read_tsv(path: str, required: tuple[str, ...]) -> list[dict]:
  if not os.path.exists(path):
    raise eeg_io.EEGDataError(f"{path}: file not found")
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
  missing = [c for c in required if rows and c not in rows[0]]
  if missing or not rows:
    raise eeg_io.EEGDataError(f"{path}: columns {missing or list(required)} missing or no rows; expected a "
                              f"tab-separated table with {list(required)}")
  return rows


def read_cohorts(config, root: str) -> dict:
  """``{task: {split: [recording dict]}}``; each: ``data [C, T]`` uV, ``annotations``, ``age``, ``seizures``."""
  d = config.data
  out: dict = {}
  for task in ("age", "seizure", "events"):
    out[task] = {}
    for split in ("train", "test"):
      folder = os.path.join(root, task, split)
      people = _read_tsv(os.path.join(folder, "participants.tsv"), ("recording", "age"))
      seizures = _read_tsv(os.path.join(folder, "seizures.tsv"), ("recording", "onset", "duration", "channels")) \
          if task == "seizure" else []
      recs = []
      for row in people:
        path = os.path.join(folder, row["recording"] + ".edf")
        r = eeg_io.load_eeg(path, montage=d.montage, band=tuple(d.band), notch=d.notch, sfreq=d.sfreq)
        annotations = r.annotations
        if task == "seizure":                                 # TUSZ term-based labels, as TUH ships them
          annotations = annotations + [(e.start, e.stop - e.start, "seizure") for e in eeg_labels.read_tusz_csv(
              os.path.join(folder, row["recording"] + ".csv_bi")) if e.label == "seiz"]
        recs.append({"data": r.data * 1e6, "sfreq": r.sfreq, "ch_names": r.ch_names, "annotations": annotations,
                     "age": float(row["age"]), "path": path,
                     "seizures": [(float(s["onset"]), float(s["duration"]), tuple(s["channels"].split("/")))
                                  for s in seizures if s["recording"] == row["recording"]]})
      out[task][split] = recs
  return out


def task_windows(task: str, recordings: list[dict], window_s: float) -> dict:
  """Windows ``x [N, C, T]`` (uV, float32), targets ``y`` and ``subject [N]`` (the recording's index: one subject
  per recording); seizure windows also carry ``focus`` channel names.

  age: consecutive ``window_s`` windows, target the age; seizure: windows
  every ``window_s / 2``, positive when a seizure covers at least
  ``min(window_s / 2, 2 s)``; events: the TUEV 5 s window around each event
  (windows padded at a recording's edge are dropped).
  """
  xs, ys, focus, subject = [], [], [], []
  for k, r in enumerate(recordings):
    first = sum(len(x) for x in xs)
    sf = r["sfreq"]
    if task == "events":
      onsets = [a[0] for a in r["annotations"] if a[2] in TASK_CLASSES["events"]]
      w, padded = eeg_windows.event_windows(r["data"], sf, onsets, event_s=1.0, context_s=2.0)
      labels = [TASK_CLASSES["events"][a[2]] for a in r["annotations"] if a[2] in TASK_CLASSES["events"]]
      xs.append(w[~padded])
      ys.append(np.asarray(labels)[~padded])
      subject.append(np.full(sum(len(x) for x in xs) - first, k))
      continue
    stride = window_s if task == "age" else window_s / 2
    w, starts = eeg_windows.fixed_windows(r["data"], sf, window_s, stride)
    xs.append(w)
    subject.append(np.full(len(w), k))
    if task == "age":
      ys.append(np.full(len(w), r["age"], np.float32))
      continue
    ann = [a for a in r["annotations"] if a[2] in TASK_CLASSES["seizure"]]
    ys.append(eeg_windows.window_labels(starts, window_s, ann, TASK_CLASSES["seizure"],
                                        min_overlap=min(0.5, 2.0 / window_s), path=r["path"]))
    for s in starts:
      cover = [(min(s + window_s, o + dur) - max(s, o), ch) for o, dur, ch in r["seizures"]]
      best = max(cover, default=(0.0, ()))
      focus.append(best[1] if best[0] > 0 else ())
  out = {"x": np.concatenate(xs).astype(np.float32), "y": np.concatenate(ys), "subject": np.concatenate(subject)}
  if task == "seizure":
    out["focus"] = focus
  return out
