"""Config for the EEG study: general time-series models vs specialised EEG models on three tasks.

  python -m experiments.eeg_fm --config=experiments/eeg_fm/config.py:demo --workdir=runs/eeg_fm

Presets:
  tiny  - a handful of short recordings, 1-block models, a few steps per stage: a CI smoke run.
  demo  - 60/30 age subjects, 24/12 seizure and 16/8 event recordings (EDF at 200 Hz, read at 100 Hz),
          64-wide 3-block models, generic-series pretraining; CPU, minutes.
  paper - TUAB/TUSZ/TUEV-sized cohorts and foundation-model widths; for GPU/TPU (bring your own EDFs).
"""

import ml_collections

from jaxmed.core import check_preset
from jaxmed.io import eeg as eeg_io


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.seeds = (0, 1, 2)              # training seeds (pretraining and every stage); the cohort is fixed by c.seed
  c.eval = ml_collections.ConfigDict({"bootstrap": 1000})   # subject-level bootstrap resamples for the 95% CIs
  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "model": 1})
  # recordings are written as EDF at file_sfreq and read back through jaxmed.io.eeg at sfreq
  c.data = ml_collections.ConfigDict({
      "file_sfreq": 200, "sfreq": 100.0, "montage": "referential", "band": (0.5, 40.0),
      "notch": eeg_io.LINE_FREQ["tuh"],                     # the dataset preset's mains frequency (TUH: 60 Hz)
      "window_s": 10.0, "age_train": 60, "age_test": 30, "age_duration_s": 30.0,
      "seizure_train": 24, "seizure_test": 12, "seizure_duration_s": 60.0, "seizures_per_recording": 2,
      "event_train": 16, "event_test": 8, "event_duration_s": 60.0,
      # benign rhythmic bursts per second in every recording (seizure mimics, jaxmed/synth/eeg.py); chosen on a
      # separate cohort (seed 7, experiments/eeg_fm/calibrate.py), never on this one's test split
      "mimic_rate": 0.025})
  c.context_s = (2.0, 5.0, 10.0, 20.0)
  # patches of 50 samples (0.5 s at 100 Hz): 19 x 20 tokens per 10 s window for the joint attention on 2 CPU cores
  c.otis = ml_collections.ConfigDict({"patch": 50, "dim": 64, "depth": 3, "heads": 4, "num_variates": 19,
                                      "mask_ratio": 0.4})
  c.timesfm = ml_collections.ConfigDict({"input_patch": 32, "output_patch": 64, "dim": 64, "depth": 3, "heads": 4,
                                         "num_quantiles": 0})
  c.eegnet = ml_collections.ConfigDict({"f1": 8, "depth_multiplier": 2, "f2": 16, "dropout": 0.25})
  c.biot = ml_collections.ConfigDict({"dim": 64, "depth": 2, "heads": 4})
  # pretraining corpus: generic series only (sines, AR, walks), never EEG; include_eeg=True adds as many
  # unlabelled synthetic EEG channels (a domain-adapted variant, not the study's setting)
  c.pretrain = ml_collections.ConfigDict({"num_series": 4000, "length": 512, "steps": 1000, "batch_size": 16,
                                          "lr": 1e-3, "include_eeg": False})
  c.mlp = ml_collections.ConfigDict({"steps": 300, "batch_size": 32, "lr": 1e-3, "hidden": 128})
  c.finetune = ml_collections.ConfigDict({"steps": 300, "batch_size": 16, "lr": 3e-4})
  c.scratch = ml_collections.ConfigDict({"steps": 400, "batch_size": 16, "lr": 1e-3})
  c.localisation = ml_collections.ConfigDict({"max_windows": 32, "ig_steps": 16, "num_baselines": 4})
  c.train = ml_collections.ConfigDict({"save_every": 200, "keep": 2, "log_every": 50, "weight_decay": 1e-4})
  if preset == "tiny":
    c.seeds = (0,)                 # one seed keeps CI fast; tests/experiments/test_eeg_evaluate.py covers several
    c.eval.bootstrap = 30
    c.data.update({"age_train": 8, "age_test": 8, "age_duration_s": 20.0, "seizure_train": 4, "seizure_test": 4,
                   "seizure_duration_s": 40.0, "event_train": 2, "event_test": 2, "event_duration_s": 30.0,
                   "window_s": 5.0})
    c.context_s = (2.0, 5.0)
    c.otis.update({"dim": 16, "depth": 1, "heads": 2})
    c.timesfm.update({"dim": 16, "depth": 1, "heads": 2})
    c.biot.update({"dim": 16, "depth": 1, "heads": 2})
    c.pretrain.update({"num_series": 64, "length": 256, "steps": 4, "batch_size": 8})
    for stage in ("mlp", "finetune", "scratch"):
      c[stage].update({"steps": 4, "batch_size": 8})
    c.localisation.update({"max_windows": 4, "ig_steps": 4, "num_baselines": 2})
    c.train.update({"save_every": 4, "log_every": 2})
  elif preset == "paper":
    c.data.update({"age_train": 2000, "age_test": 500, "seizure_train": 500, "seizure_test": 100,
                   "event_train": 300, "event_test": 60})
    c.otis.update({"patch": 24, "dim": 384, "depth": 6, "heads": 6})
    c.timesfm.update({"output_patch": 128, "dim": 1280, "depth": 20, "heads": 16, "num_quantiles": 9})
    c.biot.update({"dim": 256, "depth": 4, "heads": 8})
    c.pretrain.update({"num_series": 200000, "steps": 100000, "batch_size": 64, "lr": 3e-4})
    for stage in ("mlp", "finetune", "scratch"):
      c[stage].update({"steps": 5000, "batch_size": 64})
    c.localisation.update({"max_windows": 256, "ig_steps": 32})
    c.train.update({"save_every": 2000, "keep": 3, "log_every": 100})
  return c
