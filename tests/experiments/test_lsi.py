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
  keys += ["auroc/closed_form", "spearman/closed_vs_exact"]
  for key in keys:
    assert key in results and math.isfinite(results[key]), key
  # Even with a barely trained backbone, flipped labels stand out and the structures agree.
  assert results["auroc/mislabel/lsi"] > 0.8
  assert results["spearman/diag_full"] > 0.8
  assert results["spearman/closed_vs_exact"] > 0.95 and results["auroc/closed_form"] > 0.8
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


def _features_file(path, n=160, d=6, k=3, nan=False):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, k, n)
  x = rng.normal(size=(k, d))[labels] * 2 + rng.normal(size=(n, d))
  labels[:8] = (labels[:8] + 1) % k                               # flipped: the most informative samples
  if nan:
    x[5, 2] = np.nan
  split = np.where(np.arange(n) < 120, "train", "test")
  np.savez(path, features=x, labels=labels, split=split)
  return labels


def test_lsi_on_a_users_own_features(tmp_path):
  import csv
  path = str(tmp_path / "feats.npz")
  labels = _features_file(path)
  config = lsi_config.get_config("tiny")
  config.data.features = path
  config.lsi.byo_exact_samples = 20
  results = lsi_train.train_and_evaluate(config, str(tmp_path / "run"))
  assert results["data/num_train"] == 120 and "probe_heldout_accuracy" in results
  assert results["spearman/closed_vs_exact"] > 0.95
  with open(tmp_path / "run" / "lsi_scores.csv") as f:
    rows = list(csv.DictReader(f))
  assert [int(r["index"]) for r in rows] == list(range(120))
  assert all(int(r["label"]) == labels[int(r["index"])] for r in rows)
  lsi = np.array([float(r["lsi"]) for r in rows])
  assert set(np.argsort(-lsi)[:8]) & set(range(8))                # a flipped sample is among the top 8


def test_lsi_features_file_errors_name_the_file_and_array(tmp_path):
  import pytest
  from jaxmed.io.features import FeaturesError, load_features_npz
  bad = str(tmp_path / "nan.npz")
  _features_file(bad, nan=True)
  with pytest.raises(FeaturesError, match=r"nan\.npz: array 'features': expected finite values; row 5, column 2"):
    load_features_npz(bad)
  np.savez(tmp_path / "shape.npz", features=np.zeros((4, 3)), labels=np.zeros(5, int))
  with pytest.raises(FeaturesError, match=r"'labels': expected shape \[N\] = \(4,\)"):
    load_features_npz(str(tmp_path / "shape.npz"))
  np.savez(tmp_path / "neg.npz", features=np.zeros((4, 3)), labels=np.array([0, 1, -1, 1]))
  with pytest.raises(FeaturesError, match="class indices >= 0; row 2"):
    load_features_npz(str(tmp_path / "neg.npz"))
  np.savez(tmp_path / "nolabels.npz", features=np.zeros((4, 3)))
  with pytest.raises(FeaturesError, match="'labels': missing"):
    load_features_npz(str(tmp_path / "nolabels.npz"))
  np.savez(tmp_path / "split.npz", features=np.zeros((4, 3)), labels=np.array([0, 1, 0, 1]),
           split=np.array(["test"] * 4))
  with pytest.raises(FeaturesError, match="'split': expected some 'train' rows"):
    load_features_npz(str(tmp_path / "split.npz"))
