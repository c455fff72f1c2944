"""The WSI graph experiment's tiny preset end to end, the workdir contract, and one compile for bucketed graphs."""

import json
import math
import os

import jax
import numpy as np
import optax

from experiments.wsi_graph import config as wsi_config
from experiments.wsi_graph import train as wsi_train
from jaxmed import core, pathology


def test_wsi_graph_tiny_end_to_end(tmp_path):
  config = wsi_config.get_config("tiny")
  results = wsi_train.train_and_evaluate(config, str(tmp_path))
  for name in wsi_train.MODELS:
    for key in (f"acc/stage/{name}", f"auroc/stage/{name}", f"cindex/{name}", f"f1/stage/{name}"):
      assert key in results and (math.isfinite(results[key]) or key.startswith("auroc")), key
    assert os.path.isdir(tmp_path / name / "checkpoints")
  assert 0 < results["nodes/mean_after_coarsening"] <= results["nodes/mean_before_coarsening"]
  assert results["ig/completeness_rel_err"] < 0.01
  for f in ("config.json", "metrics.jsonl", "results.json", "ig.png"):
    assert os.path.exists(tmp_path / f), f
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert {r["run"] for r in rows} == set(wsi_train.MODELS)
  # slides are real pyramidal TIFFs and graphs are cached
  assert len(os.listdir(tmp_path / "slides")) == 24 and len(os.listdir(tmp_path / "graphs")) == 24
  # other region settings build new graphs beside the cached ones instead of reading stale ones
  slide = wsi_train.make_slides(config, str(tmp_path))[0]
  cached = wsi_train.slide_graphs(config, slide, str(tmp_path / "graphs"))
  coarser = core.apply_overrides(config, {"regions.n_segments": config.regions.n_segments // 3})
  rebuilt = wsi_train.slide_graphs(coarser, slide, str(tmp_path / "graphs"))
  assert len(os.listdir(tmp_path / "graphs")) == 25
  assert len(rebuilt["region/x"]) < len(cached["region/x"])


def test_bucketed_train_step_compiles_once(tmp_path):
  config = wsi_config.get_config("tiny")
  config.data.update(dict(num_train=8, num_test=0))
  slides = wsi_train.make_slides(config, str(tmp_path))
  graphs = [wsi_train.slide_graphs(config, s, str(tmp_path)) for s in slides]
  f = len(pathology.FEATURE_NAMES)
  data = wsi_train.stacked(graphs, "region", np.zeros(f), np.ones(f))
  data.update(stage=np.arange(8) % 3, time=np.arange(8.0) + 1, event=np.ones(8))
  model = wsi_train.make_model("graph", config)
  params = model.init(jax.random.PRNGKey(0), pathology.unstack_graph({k: v[0] for k, v in data.items()}))
  tx = optax.adam(1e-3)

  def train_step(params, opt_state, batch):
    def loss(p):
      out = wsi_train.forward("graph", model, p, batch)
      return optax.softmax_cross_entropy_with_integer_labels(out["logits"], batch["stage"]).mean()
    g = jax.grad(loss)(params)
    u, opt_state = tx.update(g, opt_state)
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
  for override in ({"regions.n_segments": 61}, {"regions.patch": 8}, {"data.level": 0}):
    assert wsi_train.graph_cache_path(core.apply_overrides(config, override), slide, str(tmp_path)) != path
  neutral = core.apply_overrides(config, {"train.log_every": 3})
  assert wsi_train.graph_cache_path(neutral, slide, str(tmp_path)) == path
  with open(slide["path"], "wb") as f:  # the slide file replaced
    f.write(b"y" * 11)
  assert wsi_train.graph_cache_path(config, slide, str(tmp_path)) != path
