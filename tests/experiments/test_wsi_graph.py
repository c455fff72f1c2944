"""The WSI graph experiment: tiny preset end to end under patient-grouped CV, corrupt slides skipped, one compile."""

import json
import math
import os

import jax
import numpy as np
import optax
import pytest

from experiments.wsi_graph import config as wsi_config
from experiments.wsi_graph import train as wsi_train
from jaxmed import core, pathology
from jaxmed.io import write_pyramidal_tiff
from jaxmed.synth.slides import synthetic_slide


def test_wsi_graph_tiny_end_to_end(tmp_path):
  config = wsi_config.get_config("tiny")
  results = wsi_train.train_and_evaluate(config, str(tmp_path))
  for name in wsi_train.MODELS:
    for metric in ("stage_acc", "stage_auroc", "cindex", "stage_f1"):
      for prefix in ("cv", "cv_sd"):
        key = f"{prefix}/{name}/{metric}"
        assert key in results and (math.isfinite(results[key]) or metric == "stage_auroc"), key
    assert 0 <= results[f"cv/{name}/stage_acc"] <= 1
    for k in range(config.cv.folds):
      assert os.path.isdir(tmp_path / wsi_train.run_name(0, k, name) / "checkpoints")
  for key in ("oracle/stage_acc", "oracle/cindex", "oracle_burden_only/stage_acc", "floor/stage_acc",
              "paired_gain/stage_acc/region_graph_vs_abmil"):
    assert key in results, key
  lo, hi = results["paired_gain_ci/stage_acc/region_graph_vs_patch_graph"]
  assert lo <= results["paired_gain/stage_acc/region_graph_vs_patch_graph"] <= hi
  assert 0 < results["nodes/mean_after_coarsening"] <= results["nodes/mean_regions"]
  assert results["ig/completeness_rel_err"] < 0.01 and results["slides/skipped"] == 0
  for f in ("config.json", "metrics.jsonl", "results.json", "ig.png", "cv.png", "slides/labels.csv",
            "skipped_slides.txt"):
    assert os.path.exists(tmp_path / f), f
  runs = {json.loads(line)["run"] for line in open(tmp_path / "metrics.jsonl")}
  assert runs == {wsi_train.run_name(0, k, m) for k in range(config.cv.folds) for m in wsi_train.MODELS}
  # slides are real pyramidal TIFFs, graphs cached once per slide; a cached graph holds no label map in training
  assert len([f for f in os.listdir(tmp_path / "slides") if f.endswith(".tiff")]) == 20
  assert len(os.listdir(tmp_path / "graphs")) == 20
  path = os.path.join(tmp_path / "graphs", sorted(os.listdir(tmp_path / "graphs"))[0])
  assert set(wsi_train.load_graph(path)) == {f"{k}/{g}" for k in ("region", "patch") for g in wsi_train.GRAPH_KEYS}


def _slide_dir(tmp_path, n=8):
  rows = ["slide,stage,time,event,patient"]
  for i in range(n):
    rgb, info = synthetic_slide(i, size=256)
    write_pyramidal_tiff(str(tmp_path / f"s{i}.tiff"), rgb, levels=3, tile=64, mpp=0.5)
    rows.append(f"s{i}.tiff,{info['stage']},{info['time']:.2f},{info['event']},P{i // 2}")
  return rows


def test_a_corrupt_slide_is_named_skipped_and_the_batch_goes_on(tmp_path):
  rows = _slide_dir(tmp_path)
  good = (tmp_path / "s0.tiff").read_bytes()
  (tmp_path / "s3.tiff").write_bytes(good[:len(good) // 3])  # truncated
  (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
  config = wsi_config.get_config("tiny")
  config.data.slide_dir = str(tmp_path)
  work = tmp_path / "work"
  os.makedirs(work)
  slides = wsi_train.make_slides(config, str(work))
  kept, paths, skipped, _ = wsi_train.build_graphs(config, slides, str(work))
  assert [os.path.basename(p) for p, _ in skipped] == ["s3.tiff"] and "s3.tiff" in skipped[0][1]
  assert len(kept) == len(paths) == 7 and "s3" not in {s["name"] for s in kept}
  assert "s3.tiff" in (work / "skipped_slides.txt").read_text()


def test_labels_csv_patients_and_clear_errors(tmp_path):
  (tmp_path / "labels.csv").write_text("slide,stage,time,event\na.svs,1,10.5,1\nb.svs,0,20,0\n")
  slides = wsi_train.read_labels(str(tmp_path))
  assert [s["patient"] for s in slides] == ["a", "b"]  # no patient column: one slide, one patient
  (tmp_path / "labels.csv").write_text("slide,stage,time,event,patient\na.svs,1,ten,1,P1\n")
  with pytest.raises(ValueError, match=r"labels.csv:2: bad or missing field"):
    wsi_train.read_labels(str(tmp_path))
  (tmp_path / "labels.csv").write_text("slide,stage,time,event\na.svs,1,10,2\n")
  with pytest.raises(ValueError, match=r"labels.csv:2: expected stage >= 0, event 0 or 1"):
    wsi_train.read_labels(str(tmp_path))


def test_folds_group_patients_and_stratify_stages():
  rng = np.random.default_rng(0)
  slides = [{"patient": f"P{i // 2}", "stage": int(s)} for i, s in enumerate(np.repeat(rng.integers(0, 3, 40), 2))]
  splits = wsi_train.folds(slides, 5, seed=0)
  assert len(splits) == 5
  tested = np.concatenate([te for _, te in splits])
  assert sorted(tested.tolist()) == list(range(len(slides)))  # every slide tested once
  for tr, te in splits:
    assert not {slides[i]["patient"] for i in tr} & {slides[i]["patient"] for i in te}
    assert len({slides[i]["stage"] for i in te}) == 3
  with pytest.raises(ValueError, match="only 2 patients"):
    wsi_train.folds(slides[:4], 5, seed=0)


def test_bucketed_train_step_compiles_once(tmp_path):
  _slide_dir(tmp_path)
  (tmp_path / "labels.csv").write_text("slide,stage,time,event\n" + "".join(f"s{i}.tiff,0,1,1\n" for i in range(8)))
  config = wsi_config.get_config("tiny")
  config.data.slide_dir = str(tmp_path)
  slides, paths, _, _ = wsi_train.build_graphs(config, wsi_train.make_slides(config, str(tmp_path)), str(tmp_path))
  graphs = [wsi_train.load_graph(p) for p in paths]
  f = len(pathology.FEATURE_NAMES)
  data = wsi_train.stacked(graphs, "region", np.zeros(f), np.ones(f))
  data.update(stage=np.arange(8) % 3, time=np.arange(8.0) + 1, event=np.ones(8))
  model = wsi_train.make_model("region_graph", config)
  params = model.init(jax.random.PRNGKey(0), pathology.unstack_graph({k: v[0] for k, v in data.items()}))
  tx = optax.adam(1e-3)

  def train_step(params, opt_state, batch):
    def loss(p):
      out = wsi_train.forward("region_graph", model, p, batch)
      return optax.softmax_cross_entropy_with_integer_labels(out["logits"], batch["stage"]).mean()
    u, opt_state = tx.update(jax.grad(loss)(params), opt_state)
    return optax.apply_updates(params, u), opt_state

  step = jax.jit(train_step)
  opt_state = tx.init(params)
  with core.count_compiles("train_step") as compiles:
    for rows in ([0, 1, 2, 3], [4, 5, 6, 7], [1, 3, 5, 7]):  # different slides, different node counts
      params, opt_state = step(params, opt_state, {k: v[rows] for k, v in data.items()})
  assert compiles.count == 1
  assert len({int(data["n_node"][i][0]) for i in range(8)}) > 1  # the slides really differ in size


def test_graph_cache_is_rebuilt_when_settings_or_the_slide_change(tmp_path):
  config = wsi_config.get_config("tiny")
  slide = {"name": "s0", "path": str(tmp_path / "s0.tiff")}
  with open(slide["path"], "wb") as f:
    f.write(b"x" * 10)
  path = wsi_train.graph_cache_path(config, slide, str(tmp_path))
  assert os.path.basename(path).startswith("s0-") and path.endswith(".npz")
  assert wsi_train.graph_cache_path(config, slide, str(tmp_path)) == path
  for override in ({"wsi.region_um2": 601.0}, {"wsi.patch_um": 8.0}, {"wsi.graph_mpp": 2.0}, {"data.slide_mpp": 0.5}):
    assert wsi_train.graph_cache_path(core.apply_overrides(config, override), slide, str(tmp_path)) != path
  neutral = core.apply_overrides(config, {"train.log_every": 3})
  assert wsi_train.graph_cache_path(neutral, slide, str(tmp_path)) == path
  with open(slide["path"], "wb") as f:  # the slide file replaced
    f.write(b"y" * 11)
  assert wsi_train.graph_cache_path(config, slide, str(tmp_path)) != path


def test_unknown_or_incomplete_model_lists_are_refused_before_any_work(tmp_path):
  config = wsi_config.get_config("tiny")
  for models in (("region_graph", "gcn"), ("abmil",)):
    config.cv.models = models
    with pytest.raises(ValueError, match="cv.models"):
      wsi_train.train_and_evaluate(config, str(tmp_path))
  assert not os.listdir(tmp_path)
