"""WSI region graphs: slides -> tissue mask -> SLIC regions -> named features -> GAT + coarsening -> stage, survival, IG.

1. Slides: synthetic H&E slides written as pyramidal TIFF (or ``data.slide_dir``
   with a ``labels.csv``), always read back through openslide.
2. Per slide at ``data.level``: CLAM tissue mask, SLIC regions and a patch
   grid, named features of both, region adjacency; cached in
   ``<workdir>/graphs/<slide>-<settings key>.npz`` (a rerun skips finished
   slides; other region settings or a changed slide file build anew).
3. Features are standardised with the training slides' statistics; graphs
   are padded to one power-of-two bucket and stacked, so a step compiles once.
4. Three models, the same loss (cross-entropy on stage + ``cox_weight`` x
   Cox partial likelihood on survival), the same steps: the region graph
   (GAT + learned coarsening), the patch-grid graph with the same network,
   and ABMIL on the patch features. Each run checkpoints in ``<workdir>/<model>``.
5. Held-out accuracy, macro-F1, one-vs-rest AUROC, C-index; node counts
   before and after coarsening; Integrated Gradients overlays (``ig.png``).
"""

from __future__ import annotations

import csv
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import core, pathology
from jaxmed.io import open_slide, write_pyramidal_tiff
from jaxmed.synth.slides import NUM_STAGES, synthetic_slide

MODELS = ("graph", "patch_graph", "abmil")


# ---- 1. slides ----

def make_slides(config, workdir) -> list[dict]:
  """``[{"name", "path", "stage", "time", "event"}]``; synthetic slides are written once."""
  d = config.data
  if d.slide_dir:
    return read_labels(d.slide_dir)
  out_dir = os.path.join(workdir, "slides")
  os.makedirs(out_dir, exist_ok=True)
  slides = []
  n = d.num_train + d.num_test
  with core.progress_bar(n, desc="synthetic slides") as bar:
    for i in range(n):
      path = os.path.join(out_dir, f"slide_{i:03d}.tiff")
      rgb, info = synthetic_slide(config.seed * 100_000 + i, size=d.size)
      if not os.path.exists(path):
        with core.atomic_file(path) as tmp:
          write_pyramidal_tiff(tmp, rgb, levels=d.levels, mpp=0.5, tile=128)
      slides.append({"name": f"slide_{i:03d}", "path": path, "stage": info["stage"], "time": info["time"],
                     "event": info["event"]})
      core.update_progress(bar, 1)
  return slides


def read_labels(slide_dir: str) -> list[dict]:
  """Reads ``slide_dir/labels.csv`` (``slide,stage,time,event``); errors name the file, line and field."""
  path = os.path.join(slide_dir, "labels.csv")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: missing; expected a CSV with columns slide,stage,time,event")
  slides = []
  with open(path, newline="") as f:
    for line, row in enumerate(csv.DictReader(f), start=2):
      try:
        slides.append({"name": os.path.splitext(row["slide"])[0], "path": os.path.join(slide_dir, row["slide"]),
                       "stage": int(row["stage"]), "time": float(row["time"]), "event": int(row["event"])})
      except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}:{line}: bad or missing field ({e}); expected slide,stage,time,event") from e
  return slides


# ---- 2. graphs ----

def graph_cache_path(config, slide: dict, cache_dir: str) -> str:
  """``<cache_dir>/<slide>-<key>.npz``; the key hashes the settings that shape the graphs and the slide
  file's path, size and mtime, so changed settings or a replaced slide build new graphs."""
  settings = {"level": config.data.level, "regions": config.regions.to_dict()}
  return os.path.join(cache_dir, f"{slide['name']}-{core.settings_key(settings, slide['path'])}.npz")


def slide_graphs(config, slide: dict, cache_dir: str) -> dict[str, np.ndarray]:
  """Region and patch graphs of one slide (cached ``.npz``, see :func:`graph_cache_path`)."""
  path = graph_cache_path(config, slide, cache_dir)
  if os.path.exists(path):
    with np.load(path) as z:
      return dict(z)
  r = config.regions
  with open_slide(slide["path"]) as s:
    level = min(config.data.level, s.level_count - 1)
    rgb = s.read_level(level)
  mask = pathology.tissue_mask(rgb)
  out = {"thumbnail": rgb[::2, ::2], "mask": mask}
  for kind, labels in (("region", pathology.slic_regions(rgb, mask, n_segments=r.n_segments,
                                                         compactness=r.compactness)),
                       ("patch", pathology.grid_regions(mask, r.patch))):
    feats, extra = pathology.region_features(rgb, labels)
    out.update({f"{kind}/x": feats, f"{kind}/area": extra["area"], f"{kind}/pos": extra["centroid"],
                f"{kind}/edges": pathology.region_adjacency(labels), f"{kind}/labels": labels.astype(np.int32)})
  with core.atomic_file(path) as tmp:
    np.savez_compressed(tmp, **out)
  return out


def stacked(graphs: list[dict], kind: str, mean, std, n_node=None, n_edge=None) -> dict[str, np.ndarray]:
  gts = [pathology.region_graph((g[f"{kind}/x"] - mean) / std, g[f"{kind}/edges"], g[f"{kind}/area"],
                                g[f"{kind}/pos"]) for g in graphs]
  return pathology.stack_graphs(gts, n_node=n_node, n_edge=n_edge)


def bags(graphs: list[dict], mean, std, n_max: int) -> dict[str, np.ndarray]:
  """ABMIL bags of patch features ``[B, n_max, F]`` with a mask."""
  x = np.zeros((len(graphs), n_max, len(pathology.FEATURE_NAMES)), np.float32)
  m = np.zeros((len(graphs), n_max), bool)
  for i, g in enumerate(graphs):
    f = (g["patch/x"] - mean) / std
    x[i, :len(f)], m[i, :len(f)] = f, True
  return {"x": x, "mask": m}


# ---- 3-4. models and training ----

def make_model(name: str, config, num_classes: int = NUM_STAGES):
  m = config.model
  if name == "abmil":
    return pathology.ABMIL(num_classes, hidden=m.hidden)
  return pathology.RegionGraphNet(num_classes, hidden=m.hidden, heads=m.heads, coarsen_rounds=m.coarsen_rounds,
                                  threshold=m.threshold, embed_dim=m.embed_dim)


def forward(name: str, model, params, batch) -> dict:
  """Per-slide outputs ``logits [B, C]``, ``risk [B]`` (and ``num_nodes [B]`` for graphs)."""
  if name == "abmil":
    return model.apply(params, batch["x"], batch["mask"])

  def one(row):
    out = model.apply(params, pathology.unstack_graph(row))
    return {"logits": out["logits"][0], "risk": out["risk"][0], "num_nodes": out["num_nodes"][0]}

  return jax.vmap(one)({k: batch[k] for k in ("x", "area", "pos", "senders", "receivers", "n_node", "n_edge")})


def train_model(name, config, workdir, mesh, train_data, num_classes) -> tuple[object, dict]:
  model = make_model(name, config, num_classes)
  t = config.train
  tx = optax.adamw(optax.cosine_decay_schedule(t.lr, t.steps), weight_decay=t.weight_decay)
  example = {k: v[:1] for k, v in train_data.items()}
  if name == "abmil":
    init = lambda r: model.init(r, example["x"][0], example["mask"][0])  # noqa: E731
  else:
    init = lambda r: model.init(r, pathology.unstack_graph({k: v[0] for k, v in example.items()}))  # noqa: E731
  state, sharding = core.create_train_state(init, tx, jax.random.PRNGKey(config.seed), mesh)

  def loss_fn(params, batch, rng):
    out = forward(name, model, params, batch)
    ce = optax.softmax_cross_entropy_with_integer_labels(out["logits"], batch["stage"]).mean()
    cox = pathology.cox_loss(out["risk"], batch["time"], batch["event"])
    acc = (out["logits"].argmax(-1) == batch["stage"]).mean()
    return ce + t.cox_weight * cox, {"ce": ce, "cox": cox, "acc": acc}

  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  ds = core.step_batches(core.ArraySource(train_data), batch_size=t.batch_size, seed=config.seed)
  state = core.train_loop(state, step, lambda s: ds[s], mesh=mesh, run_dir=os.path.join(workdir, name),
                          steps=t.steps, save_every=t.save_every, keep=t.keep, log_every=t.log_every,
                          desc=f"train {name}")
  return model, state.params


def evaluate(name, model, params, data, num_classes) -> dict[str, float]:
  from sklearn.metrics import f1_score, roc_auc_score

  out = jax.device_get(jax.jit(lambda p, b: forward(name, model, p, b))(params, data))
  prob = np.asarray(jax.nn.softmax(out["logits"], -1))
  stage = np.asarray(data["stage"])
  res = {f"acc/stage/{name}": float((prob.argmax(-1) == stage).mean()),
         f"f1/stage/{name}": float(f1_score(stage, prob.argmax(-1), average="macro")),
         f"cindex/{name}": pathology.concordance_index(out["risk"], data["time"], data["event"])}
  try:
    res[f"auroc/stage/{name}"] = float(roc_auc_score(stage, prob, multi_class="ovr", labels=list(range(num_classes))))
  except ValueError:  # a test split without every stage
    res[f"auroc/stage/{name}"] = float("nan")
  if "num_nodes" in out:
    res[f"nodes/after/{name}"] = float(np.mean(out["num_nodes"]))
  return res


# ---- 5. the experiment ----

def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  mesh = core.make_mesh(config.mesh)
  slides = make_slides(config, workdir)
  rng = np.random.default_rng(config.seed)
  order = rng.permutation(len(slides))
  n_train = config.data.num_train or int(round(0.75 * len(slides)))
  train_idx, test_idx = order[:n_train], order[n_train:]
  cache = os.path.join(workdir, "graphs")
  os.makedirs(cache, exist_ok=True)
  t0 = time.time()
  graphs = []
  built = sum(not os.path.exists(graph_cache_path(config, s, cache)) for s in slides)
  with core.progress_bar(len(slides), desc="slides -> graphs") as bar:
    for s in slides:
      graphs.append(slide_graphs(config, s, cache))
      core.update_progress(bar, 1)
  build_s = (time.time() - t0) / max(built, 1)

  def labels_of(idx):
    return {"stage": np.asarray([slides[i]["stage"] for i in idx], np.int32),
            "time": np.asarray([slides[i]["time"] for i in idx], np.float32),
            "event": np.asarray([slides[i]["event"] for i in idx], np.float32)}

  tr, te = [graphs[i] for i in train_idx], [graphs[i] for i in test_idx]
  data = {}
  for kind, name in (("region", "graph"), ("patch", "patch_graph")):
    allx = np.concatenate([g[f"{kind}/x"] for g in tr])
    mean, std = allx.mean(0), allx.std(0) + 1e-6
    full = stacked(tr + te, kind, mean, std)  # one bucket for train and test
    n = len(tr)
    data[name] = ({**{k: v[:n] for k, v in full.items()}, **labels_of(train_idx)},
                  {**{k: v[n:] for k, v in full.items()}, **labels_of(test_idx)}, (mean, std))
  pmean, pstd = data["patch_graph"][2]
  n_max = pathology.next_pow2(max(len(g["patch/x"]) for g in graphs))
  data["abmil"] = ({**bags(tr, pmean, pstd, n_max), **labels_of(train_idx)},
                   {**bags(te, pmean, pstd, n_max), **labels_of(test_idx)}, (pmean, pstd))

  results = {"num_slides/train": len(tr), "num_slides/test": len(te),
             "nodes/mean_before_coarsening": float(np.mean([len(g["region/x"]) for g in te])),
             "nodes/mean_patches": float(np.mean([len(g["patch/x"]) for g in te]))}
  num_classes = max(NUM_STAGES, max(s["stage"] for s in slides) + 1)
  if built:  # a rerun reads the cached graphs; only a run that built them reports the time
    results["graph_build_s_per_slide"] = build_s
  trained = {}
  for name in MODELS:
    model, params = train_model(name, config, workdir, mesh, data[name][0], num_classes)
    trained[name] = (model, params)
    results.update(evaluate(name, model, params, data[name][1], num_classes))
  results["nodes/mean_after_coarsening"] = results.pop("nodes/after/graph")
  results["nodes/patch_graph_after_coarsening"] = results.pop("nodes/after/patch_graph")

  model, params = trained["graph"]
  ig = explain(model, params, data["graph"][1], config.ig.steps, config.ig.num_slides)
  results["ig/completeness_rel_err"] = ig["completeness_rel_err"]
  for name, value in ig["top_features"][:5]:
    results[f"ig/top_feature/{name}"] = value
  plot_ig([te[i] for i in range(len(ig["node_attr"]))], ig, [slides[i] for i in test_idx],
          os.path.join(workdir, "ig.png"))
  core.gather_run_metrics(workdir, MODELS)
  return core.write_results(workdir, results)


# ---- Integrated Gradients ----

def explain(model, params, test, steps: int, num_slides: int) -> dict:
  """IG of the predicted stage's logit for the first test slides, baseline = mean training features (0 after
  standardisation) on the real nodes, with the coarse partition held at the input's."""
  node_attr, feat_attr, errs = [], np.zeros(len(pathology.FEATURE_NAMES)), []
  for i in range(min(num_slides, len(test["x"]))):
    g = pathology.unstack_graph({k: jnp.asarray(test[k][i]) for k in ("x", "area", "pos", "senders", "receivers",
                                                                      "n_node", "n_edge")})
    out = model.apply(params, g)
    target = int(jnp.argmax(out["logits"][0]))
    x = g.nodes["x"]
    baseline = jnp.zeros_like(x)

    def f(v, g=g, keep=out["keep"], target=target):
      return model.apply(params, g, v, keep=keep)["logits"][0, target]

    attr = np.asarray(pathology.integrated_gradients(f, x, baseline, steps=steps))
    n = int(test["n_node"][i][0])
    gap = float(f(x) - f(baseline))
    errs.append(abs(attr.sum() - gap) / max(abs(gap), 1e-8))
    node_attr.append(attr[:n].sum(1))
    feat_attr += np.abs(attr[:n]).sum(0)
  order = np.argsort(-feat_attr)
  return {"node_attr": node_attr, "completeness_rel_err": float(np.max(errs)),
          "top_features": [(pathology.FEATURE_NAMES[k], float(feat_attr[k] / feat_attr.sum())) for k in order]}


def plot_ig(graphs, ig, slides, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from skimage.segmentation import find_boundaries

  n = len(graphs)
  fig, ax = plt.subplots(n, 3, figsize=(11, 3.6 * n), squeeze=False)
  for i, (g, s) in enumerate(zip(graphs, slides)):
    labels = g["region/labels"]
    rgb = g["thumbnail"]
    full = np.repeat(np.repeat(rgb, 2, 0), 2, 1)[:labels.shape[0], :labels.shape[1]]
    ax[i, 0].imshow(full)
    ax[i, 0].set_title(f"{s['name']}: stage {s['stage'] + 1}")
    seg = full.copy()
    seg[find_boundaries(labels)] = (0, 0, 0)
    ax[i, 1].imshow(seg)
    ax[i, 1].set_title(f"{labels.max()} SLIC regions")
    heat = pathology.paint_regions(labels, ig["node_attr"][i])
    lim = np.nanmax(np.abs(heat)) or 1.0
    ax[i, 2].imshow(full)
    im = ax[i, 2].imshow(heat, cmap="coolwarm", vmin=-lim, vmax=lim, alpha=0.6)
    ax[i, 2].set_title("IG per region (predicted stage)")
    fig.colorbar(im, ax=ax[i, 2], fraction=0.046)
    for a in ax[i]:
      a.axis("off")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=90)
  plt.close(fig)
