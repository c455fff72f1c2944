"""The LSI experiment's tiny preset runs end to end, honours the workdir contract and finds the flipped labels."""

import json
import math
import os

import numpy as np

from experiments.lsi import config as lsi_config
from experiments.lsi import train as lsi_train


def test_flip_labels_flips_exactly_the_fraction_to_other_classes():
  labels = np.repeat(np.arange(10), 20).astype(np.int32)
  noisy, flipped = lsi_train.flip_labels(labels, 0.1, 10, seed=0)
  assert flipped.sum() == 20
  assert np.all(noisy[flipped] != labels[flipped]) and np.all(noisy[~flipped] == labels[~flipped])


def test_lsi_tiny_end_to_end(tmp_path):
  config = lsi_config.get_config("tiny")
  results = lsi_train.train_and_evaluate(config, str(tmp_path))
  keys = [f"auroc/mislabel/{s}" for s in ("lsi", "el2n", "grand", "loss", "influence")]
  keys += [f"spearman/{s}" for s in ("diag_full", "kfac_full", "diag_kfac", "exact_vs_warm", "exact_vs_influence")]
  keys += [f"acc/prune/{s}" for s in ("top", "bottom", "random")] + ["lsi_mean/digits", "lsi_mean/lesions"]
  for key in keys:
    assert key in results and math.isfinite(results[key]), key
  # Even with a barely trained backbone, flipped labels stand out and the structures agree.
  assert results["auroc/mislabel/lsi"] > 0.8
  assert results["spearman/diag_full"] > 0.8
  assert results["spearman/exact_vs_warm"] > 0.95
  assert results["lsi_mean/digits_noisy/flipped"] > 2 * results["lsi_mean/digits_noisy/clean"]
  scores = np.load(tmp_path / "lsi_scores.npz")
  full = scores["digits/noisy/lsi/full"]
  assert full.shape == (config.digits.n_pool,) and np.all(full > 0)
  np.testing.assert_allclose(full, 0.5 * (scores["digits/noisy/trace/full"] + scores["digits/noisy/mahalanobis/full"]
                                          + scores["digits/noisy/logdet/full"]), rtol=1e-8)
  for f in ("config.json", "metrics.jsonl", "results.json", "typicality.png", "mislabel.png", "classwise.png"):
    assert os.path.exists(tmp_path / f), f
  assert os.path.isdir(tmp_path / "digits_backbone" / "checkpoints")
  runs = {json.loads(line)["run"] for line in open(tmp_path / "metrics.jsonl")}
  assert {"digits_backbone", "lesions_backbone", "transfer/top_seed0", "transfer/random_seed0"} <= runs
