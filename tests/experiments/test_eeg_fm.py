"""The EEG study's tiny preset end to end: EDF cohorts, every model and protocol, keys, figures, resume."""

import math
import os

from experiments import eeg_fm as eeg_experiment
from experiments.eeg_fm import config as eeg_config
from experiments.eeg_fm import train as eeg_train


def test_eeg_fm_tiny_end_to_end(tmp_path):
  config = eeg_config.get_config("tiny")
  results = eeg_train.train_and_evaluate(config, str(tmp_path))
  for model, protocol in eeg_experiment.ROWS:
    for task, metric in eeg_experiment.COLUMNS:
      key = f"{task}/{metric}/{model}/{protocol}"
      assert key in results and (math.isfinite(results[key]) or metric in ("auroc", "auprc")), key
  for task, metric in (("age", "mae"), ("seizure", "auroc")):
    for model in ("otis", "timesfm"):
      for s in config.context_s:
        assert f"context/{s:g}/{task}/{metric}/{model}" in results
    for model, protocol in eeg_experiment.ROWS[:-1]:                  # every trained row has its 95% CI
      lo, hi = results[f"{task}/{metric}/{model}/{protocol}_ci"]
      v = results[f"{task}/{metric}/{model}/{protocol}"]
      assert lo <= v <= hi or not math.isfinite(v), (task, model, protocol)
    best = results[f"{task}/{metric}/best"]
    assert f"{task}/{metric}/{best}" in results and f"compare/{task}/{metric}/untrained_otis/linear_ci" in results
  lo, hi = results["seizure/auroc/oracle_ci"]
  assert lo <= results["seizure/auroc/oracle"] <= hi
  for model in ("otis", "timesfm", "eegnet", "biot"):
    for key in ("top_k_hit", "top_k_hit_zero_baseline", "occlusion_top_k_hit"):
      assert 0.0 <= results[f"localisation/{key}/{model}"] <= 1.0
  assert results["seizure/auroc/oracle"] == 1.0 and results["age/mae/oracle"] > 0  # labels follow the truth
  assert results["data/events/test_windows"] > 0 and results["data/seizure/train_windows"] > 0
  for f in ("config.json", "results.json", "metrics.jsonl", "topomaps.png", "context.png", "confusion.png", "headline.png",
            "edf/age/train/participants.tsv", "edf/seizure/test/seizures.tsv", "edf/seizure/test/rec0000.csv_bi",
            "edf/seizure/train/rec0001.csv", "edf/events/train/rec0000.edf",
            "pretrain_otis_seed0", "full_timesfm_events_seed0", "scratch_eegnet_seizure_seed0"):
    assert os.path.exists(tmp_path / f), f
  again = eeg_train.train_and_evaluate(config, str(tmp_path))      # every stage resumes from its checkpoint
  for key in ("age/mae/otis/full", "seizure/auroc/eegnet/scratch", "events/kappa/timesfm/mlp",
              "localisation/top_k_hit/biot"):
    assert again[key] == results[key] or (math.isnan(again[key]) and math.isnan(results[key])), key
  table = eeg_experiment.results_table(results)
  assert "| otis | linear |" in table and "| oracle | generator truth |" in table and "significant" in table
