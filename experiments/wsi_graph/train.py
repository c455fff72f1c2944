"""WSI region graphs: slides -> graphs at physical resolutions -> four models under patient-grouped CV -> IG.

1. Slides: a synthetic cohort (``jaxmed.synth.slides``: stage from tumour
   burden *and* architecture, patients with one or two slides) written as
   pyramidal TIFF with a ``labels.csv``, or ``data.slide_dir`` with its
   ``labels.csv`` (``slide,stage,time,event[,patient]``); always read back
   through openslide.
2. Per slide, tile by tile (:func:`jaxmed.pathology.slide_graphs`): tissue
   mask, SLIC regions and a patch grid, named features with Macenko
   normalisation and watershed nuclei, adjacency. Cached per slide in
   ``<workdir>/graphs/<slide>-<settings key>.npz`` (a rerun skips finished
   slides); training reads only the graph arrays. An unreadable slide is
   skipped with its error, listed in ``skipped_slides.txt`` and in the log.
3. Patient-grouped, stage-stratified k-fold CV (``cv.folds``), repeated
   ``cv.repeats`` times with new splits and initialisations. Per fold,
   features are standardised with the training slides' statistics, and four
   models train with the same loss (cross-entropy on stage + ``cox_weight``
   x Cox partial likelihood) and steps: the region graph with learned
   coarsening, the region graph without it, the patch-grid graph (same
   network), and ABMIL on the patch features.
4. Per model, mean and sd over folds of accuracy, macro-F1, one-vs-rest
   AUROC and C-index; out-of-fold paired differences with a patient-level
   bootstrap CI. On synthetic data, the ceiling: a logistic model on the
   true generating variables (same folds), and the floor: the training
   folds' majority stage.
5. Integrated Gradients of the region graph (last fold) on its test slides
   (``ig.png``) and the CV bars (``cv.png``): :mod:`experiments.wsi_graph.figures`.
"""

from __future__ import annotations

import csv
import os
import time

import jax
import numpy as np
import optax

from experiments.wsi_graph import figures
from jaxmed import core, pathology
from jaxmed.io import open_slide, write_pyramidal_tiff
from jaxmed.io.slide import SlideError
from jaxmed.synth import slides as synth

MODELS = ("region_graph", "region_graph_nocoarsen", "patch_graph", "abmil")
KIND = {"region_graph": "region", "region_graph_nocoarsen": "region", "patch_graph": "patch", "abmil": "patch"}
GRAPH_KEYS = ("x", "area_um2", "pos_um", "edges")
METRICS = ("stage_acc", "stage_f1", "stage_auroc", "cindex")


# ---- 1. slides ----

def make_slides(config, workdir) -> list[dict]:
  """``[{"name", "path", "stage", "time", "event", "patient"(, "latent")}]``; synthetic slides are written once."""
  d = config.data
  if d.slide_dir:
    return read_labels(d.slide_dir)
  out_dir = os.path.join(workdir, "slides")
  os.makedirs(out_dir, exist_ok=True)
  cohort = synth.synthetic_cohort(config.seed, d.num_slides)
  slides = []
  with core.progress_bar(len(cohort), desc="synthetic slides") as bar:
    for i, s in enumerate(cohort):
      name = f"slide_{i:03d}"
      path = os.path.join(out_dir, f"{name}.tiff")
      if not os.path.exists(path):
        rgb, _ = synth.synthetic_slide(s["slide_seed"], size=d.size, mpp=d.mpp, latent=s["latent"])
        with core.atomic_file(path) as tmp:
          write_pyramidal_tiff(tmp, rgb, levels=d.levels, mpp=d.mpp, tile=128)
      slides.append({"name": name, "path": path, "stage": s["stage"], "time": s["time"], "event": s["event"],
                     "patient": s["patient"], "latent": s["latent"]})
      core.update_progress(bar, 1)
  with core.atomic_file(os.path.join(out_dir, "labels.csv")) as tmp, open(tmp, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["slide", "stage", "time", "event", "patient"])
    w.writerows([[os.path.basename(s["path"]), s["stage"], s["time"], s["event"], s["patient"]] for s in slides])
  return slides


def read_labels(slide_dir: str) -> list[dict]:
  """Reads ``slide_dir/labels.csv`` (``slide,stage,time,event`` and optional ``patient``); errors name the file,
  line and field. Without a ``patient`` column every slide is its own patient."""
  path = os.path.join(slide_dir, "labels.csv")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: missing; expected a CSV with columns slide,stage,time,event[,patient]")
  slides = []
  with open(path, newline="") as f:
    for line, row in enumerate(csv.DictReader(f), start=2):
      try:
        name = os.path.splitext(row["slide"])[0]
        slides.append({"name": name, "path": os.path.join(slide_dir, row["slide"]), "stage": int(row["stage"]),
                       "time": float(row["time"]), "event": int(row["event"]),
                       "patient": (row.get("patient") or "").strip() or name})
      except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}:{line}: bad or missing field ({e}); expected slide,stage,time,event[,patient]") from e
      if slides[-1]["stage"] < 0 or slides[-1]["event"] not in (0, 1) or slides[-1]["time"] <= 0:
        raise ValueError(f"{path}:{line}: expected stage >= 0, event 0 or 1 and time > 0, got {row}")
  return slides


# ---- 2. graphs ----

def graph_cache_path(config, slide: dict, cache_dir: str) -> str:
  """``<cache_dir>/<slide>-<key>.npz``; the key hashes the settings that shape the graphs and the slide
  file's path, size and mtime, so changed settings or a replaced slide build new graphs."""
  settings = {"wsi": config.wsi.to_dict(), "slide_mpp": config.data.slide_mpp}
  return os.path.join(cache_dir, f"{slide['name']}-{core.settings_key(settings, slide['path'])}.npz")


def slide_graphs(config, slide: dict, cache_dir: str) -> str:
  """Builds (once) and caches one slide's graphs; returns the cache path. Raises :class:`SlideError`."""
  path = graph_cache_path(config, slide, cache_dir)
  if not os.path.exists(path):
    with open_slide(slide["path"]) as s:
      try:
        out = pathology.slide_graphs(s, slide_mpp=config.data.slide_mpp, **config.wsi.to_dict())
      except ValueError as e:  # e.g. no stained pixels for the stain fit
        raise SlideError(f"{slide['path']}: {e}") from e
    with core.atomic_file(path) as tmp:
      np.savez_compressed(tmp, **out)
  return path


def load_graph(path: str) -> dict[str, np.ndarray]:
  """The graph arrays of a cached slide (not its label maps or thumbnail)."""
  with np.load(path) as z:
    return {f"{k}/{g}": z[f"{k}/{g}"] for k in ("region", "patch") for g in GRAPH_KEYS}


def build_graphs(config, slides: list[dict], workdir: str) -> tuple[list[dict], list[str], list[tuple[str, str]], float]:
  """Graphs of every readable slide: ``(kept slides, cache paths, skipped (slide, error), s per built slide)``."""
  cache = os.path.join(workdir, "graphs")
  os.makedirs(cache, exist_ok=True)
  kept, paths, skipped, built, t0 = [], [], [], 0, time.time()
  with core.progress_bar(len(slides), desc="slides -> graphs") as bar:
    for s in slides:
      fresh = not os.path.exists(graph_cache_path(config, s, cache))
      try:
        paths.append(slide_graphs(config, s, cache))
        kept.append(s)
        built += fresh
      except SlideError as e:
        skipped.append((s["path"], str(e)))
      core.update_progress(bar, 1)
  with open(os.path.join(workdir, "skipped_slides.txt"), "w") as f:
    f.writelines(f"{p}\t{e}\n" for p, e in skipped)
  for p, e in skipped:
    print(f"skipped slide {p}: {e}")
  return kept, paths, skipped, (time.time() - t0) / max(built, 1) if built else float("nan")


def stacked(graphs: list[dict], kind: str, mean, std, n_node=None, n_edge=None) -> dict[str, np.ndarray]:
  gts = [pathology.region_graph((g[f"{kind}/x"] - mean) / std, g[f"{kind}/edges"], g[f"{kind}/area_um2"],
                                g[f"{kind}/pos_um"]) for g in graphs]
  return pathology.stack_graphs(gts, n_node=n_node, n_edge=n_edge)


def bags(graphs: list[dict], mean, std, n_max: int) -> dict[str, np.ndarray]:
  """ABMIL bags of patch features ``[B, n_max, F]`` with a mask."""
  x = np.zeros((len(graphs), n_max, len(pathology.FEATURE_NAMES)), np.float32)
  m = np.zeros((len(graphs), n_max), bool)
  for i, g in enumerate(graphs):
    f = (g["patch/x"] - mean) / std
    x[i, :len(f)], m[i, :len(f)] = f, True
  return {"x": x, "mask": m}


def fold_data(name: str, graphs: list[dict], train_idx, test_idx, labels: dict) -> tuple[dict, dict]:
  """Train and test arrays of one model for one fold, standardised with the training slides' statistics."""
  kind = KIND[name]
  tr = [graphs[i] for i in train_idx]
  allx = np.concatenate([g[f"{kind}/x"] for g in tr])
  mean, std = allx.mean(0), allx.std(0) + 1e-6
  lab = lambda idx: {k: v[idx] for k, v in labels.items()}  # noqa: E731
  if name == "abmil":
    n_max = pathology.next_pow2(max(len(g["patch/x"]) for g in graphs))
    return ({**bags(tr, mean, std, n_max), **lab(train_idx)},
            {**bags([graphs[i] for i in test_idx], mean, std, n_max), **lab(test_idx)})
  full = stacked([graphs[i] for i in np.concatenate([train_idx, test_idx])], kind, mean, std)  # one bucket
  n = len(train_idx)
  return {**{k: v[:n] for k, v in full.items()}, **lab(train_idx)}, {**{k: v[n:] for k, v in full.items()},
                                                                      **lab(test_idx)}


def folds(slides: list[dict], k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
  """Patient-grouped, stage-stratified ``k``-fold splits ``[(train_idx, test_idx)]`` (no patient in both)."""
  from sklearn.model_selection import StratifiedGroupKFold

  stage = np.asarray([s["stage"] for s in slides])
  groups = np.asarray([s["patient"] for s in slides])
  if len(np.unique(groups)) < k:
    raise ValueError(f"cv.folds = {k} but only {len(np.unique(groups))} patients have readable slides")
  cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
  return [(tr, te) for tr, te in cv.split(np.zeros(len(slides)), stage, groups)]


# ---- 3. models and training ----

def make_model(name: str, config, num_classes: int = synth.NUM_STAGES):
  m = config.model
  if name == "abmil":
    return pathology.ABMIL(num_classes, hidden=m.hidden)
  rounds = 0 if name == "region_graph_nocoarsen" else m.coarsen_rounds
  return pathology.RegionGraphNet(num_classes, hidden=m.hidden, heads=m.heads, coarsen_rounds=rounds,
                                  threshold=m.threshold, embed_dim=m.embed_dim)


def forward(name: str, model, params, batch) -> dict:
  """Per-slide outputs ``logits [B, C]``, ``risk [B]`` (and ``num_nodes [B]`` for graphs)."""
  if name == "abmil":
    return model.apply(params, batch["x"], batch["mask"])

  def one(row):
    out = model.apply(params, pathology.unstack_graph(row))
    return {"logits": out["logits"][0], "risk": out["risk"][0], "num_nodes": out["num_nodes"][0]}

  return jax.vmap(one)({k: batch[k] for k in ("x", "area", "pos", "senders", "receivers", "n_node", "n_edge")})


def train_model(name, config, run_dir, mesh, train_data, num_classes, seed) -> tuple[object, dict]:
  model = make_model(name, config, num_classes)
  t = config.train
  tx = optax.adamw(optax.cosine_decay_schedule(t.lr, t.steps), weight_decay=t.weight_decay)
  example = {k: v[:1] for k, v in train_data.items()}
  if name == "abmil":
    init = lambda r: model.init(r, example["x"][0], example["mask"][0])  # noqa: E731
  else:
    init = lambda r: model.init(r, pathology.unstack_graph({k: v[0] for k, v in example.items()}))  # noqa: E731
  state, sharding = core.create_train_state(init, tx, jax.random.PRNGKey(seed), mesh)

  def loss_fn(params, batch, rng):
    out = forward(name, model, params, batch)
    ce = optax.softmax_cross_entropy_with_integer_labels(out["logits"], batch["stage"]).mean()
    cox = pathology.cox_loss(out["risk"], batch["time"], batch["event"])
    acc = (out["logits"].argmax(-1) == batch["stage"]).mean()
    return ce + t.cox_weight * cox, {"ce": ce, "cox": cox, "acc": acc}

  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  ds = core.step_batches(core.ArraySource(train_data), batch_size=t.batch_size, seed=seed)
  state = core.train_loop(state, step, lambda s: ds[s], mesh=mesh, run_dir=run_dir, steps=t.steps,
                          save_every=t.save_every, keep=t.keep, log_every=t.log_every, desc=f"train {run_dir}")
  return model, state.params


def predict(name, model, params, data) -> dict[str, np.ndarray]:
  out = jax.device_get(jax.jit(lambda p, b: forward(name, model, p, b))(params, data))
  res = {"prob": np.asarray(jax.nn.softmax(out["logits"], -1)), "risk": np.asarray(out["risk"])}
  if "num_nodes" in out:
    res["num_nodes"] = np.asarray(out["num_nodes"])
  return res


def scores(prob, risk, stage, time_, event, num_classes) -> dict[str, float]:
  """Accuracy, macro-F1, one-vs-rest AUROC (NaN without every stage) and C-index."""
  from sklearn.metrics import f1_score, roc_auc_score

  pred = prob.argmax(-1)
  out = {"stage_acc": float((pred == stage).mean()),
         "stage_f1": float(f1_score(stage, pred, average="macro", labels=list(range(num_classes)), zero_division=0)),
         "cindex": pathology.concordance_index(risk, time_, event)}
  try:
    out["stage_auroc"] = float(roc_auc_score(stage, prob, multi_class="ovr", labels=list(range(num_classes))))
  except ValueError:
    out["stage_auroc"] = float("nan")
  return out


def oracle(slides, splits, labels, num_classes) -> dict[str, float]:
  """Ceiling and floor on the same folds: logistic models on the true generating variables (all, burden alone);
  the C-index of the true risk; the training folds' majority stage."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  z = np.asarray([[s["latent"][k] for k in synth.LATENTS] for s in slides])
  res: dict[str, list] = {}
  for tr, te in splits:
    for name, cols in (("oracle", [0, 1, 2]), ("oracle_burden_only", [0])):
      # standardised inputs and weak regularisation: the ceiling should not be held back by the penalty
      clf = make_pipeline(StandardScaler(), LogisticRegression(C=100.0, max_iter=5000))
      clf.fit(z[tr][:, cols], labels["stage"][tr])
      prob = np.zeros((len(te), num_classes))
      prob[:, clf[-1].classes_] = clf.predict_proba(z[te][:, cols])
      risk = np.asarray([synth.risk_score(slides[i]["latent"]) for i in te])
      for k, v in scores(prob, risk, labels["stage"][te], labels["time"][te], labels["event"][te],
                         num_classes).items():
        res.setdefault(f"{name}/{k}", []).append(v)
    majority = np.bincount(labels["stage"][tr], minlength=num_classes).argmax()
    res.setdefault("floor/stage_acc", []).append(float((labels["stage"][te] == majority).mean()))
  res.pop("oracle_burden_only/cindex")  # both used the true risk (eta without its noise) as the risk score
  return {k: float(np.nanmean(v)) for k, v in res.items()}


# ---- 4-5. the experiment ----

def train_and_evaluate(config, workdir: str) -> dict:
  models = tuple(config.cv.models)
  unknown = set(models) - set(MODELS)
  if unknown or "region_graph" not in models:
    raise ValueError(f"cv.models = {models}: expected 'region_graph' and any of {MODELS}, got unknown {unknown}")
  core.open_workdir(workdir, config)
  mesh = core.make_mesh(config.mesh)
  slides, paths, skipped, build_s = build_graphs(config, make_slides(config, workdir), workdir)
  graphs = [load_graph(p) for p in paths]
  num_classes = max(synth.NUM_STAGES, max(s["stage"] for s in slides) + 1)
  labels = {"stage": np.asarray([s["stage"] for s in slides], np.int32),
            "time": np.asarray([s["time"] for s in slides], np.float32),
            "event": np.asarray([s["event"] for s in slides], np.float32)}
  splits = [split for rep in range(config.cv.repeats)
            for split in folds(slides, config.cv.folds, config.seed + rep)]  # repeated k-fold, new splits each time
  results: dict = {"num_slides": len(slides), "num_patients": len({s["patient"] for s in slides}),
                   "slides/skipped": len(skipped), "cv/folds": config.cv.folds, "cv/repeats": config.cv.repeats,
                   "nodes/mean_regions": float(np.mean([len(g["region/x"]) for g in graphs])),
                   "nodes/mean_patches": float(np.mean([len(g["patch/x"]) for g in graphs]))}
  if build_s == build_s:  # a rerun reads the cached graphs; only a run that built them reports the time
    results["graph_build_s_per_slide"] = build_s
  fold_scores: dict[str, list[dict]] = {m: [] for m in models}
  correct = {m: np.zeros(len(slides)) for m in models}  # out-of-fold correctness, summed over repeats
  nodes_after: list[float] = []
  last = None
  for j, (tr, te) in enumerate(splits):
    rep, k = divmod(j, config.cv.folds)
    for name in models:
      train_data, test_data = fold_data(name, graphs, tr, te, labels)
      model, params = train_model(name, config, os.path.join(workdir, run_name(rep, k, name)), mesh, train_data,
                                  num_classes, config.seed + 100 * rep + k)
      p = predict(name, model, params, test_data)
      correct[name][te] += p["prob"].argmax(-1) == labels["stage"][te]
      fold_scores[name].append(scores(p["prob"], p["risk"], labels["stage"][te], labels["time"][te],
                                      labels["event"][te], num_classes))
      if name == "region_graph":
        nodes_after.extend(p["num_nodes"].tolist())
        last = (model, params, test_data, te)
  for name in models:
    for metric in METRICS:
      v = np.asarray([f[metric] for f in fold_scores[name]])
      results[f"cv/{name}/{metric}"] = float(np.nanmean(v))
      results[f"cv_sd/{name}/{metric}"] = float(np.nanstd(v))
  results["nodes/mean_after_coarsening"] = float(np.mean(nodes_after))
  results.update(paired_gains(slides, {m: c / config.cv.repeats for m, c in correct.items()}))
  if all("latent" in s for s in slides):
    results.update(oracle(slides, splits, labels, num_classes))

  model, params, test_data, te = last
  ig = figures.explain(model, params, test_data, config.ig.steps, config.ig.num_slides)
  results["ig/completeness_rel_err"] = ig["completeness_rel_err"]
  for name, value in ig["top_features"][:5]:
    results[f"ig/top_feature/{name}"] = value
  shown = [int(i) for i in te[:len(ig["node_attr"])]]
  figures.plot_ig([paths[i] for i in shown], ig, [slides[i] for i in shown], os.path.join(workdir, "ig.png"))
  figures.plot_cv(results, MODELS, os.path.join(workdir, "cv.png"))
  core.gather_run_metrics(workdir, [run_name(*divmod(j, config.cv.folds), m) for j in range(len(splits))
                                    for m in models])
  return core.write_results(workdir, results)


def run_name(rep: int, fold: int, model: str) -> str:
  """``cv<rep>/fold<k>/<model>``: one training run's directory under the workdir."""
  return f"cv{rep}/fold{fold}/{model}"


def paired_gains(slides, correct) -> dict[str, float]:
  """Out-of-fold accuracy of the region graph minus each other model's, from each slide's correctness averaged
  over the CV repeats, then over the patient's slides; percentile-bootstrap 95% CI over patients."""
  patients = sorted({s["patient"] for s in slides})
  index = {p: i for i, p in enumerate(patients)}
  pid = np.asarray([index[s["patient"]] for s in slides])
  counts = np.bincount(pid, minlength=len(patients))

  def per_patient(correct):
    return np.bincount(pid, weights=correct.astype(np.float64), minlength=len(patients)) / counts

  ref = per_patient(correct["region_graph"])
  out = {}
  for name in [m for m in MODELS[1:] if m in correct]:
    other = per_patient(correct[name])
    mean, lo, hi = core.paired_bootstrap(ref, other)
    out[f"paired_gain/stage_acc/region_graph_vs_{name}"] = mean
    out[f"paired_gain_ci/stage_acc/region_graph_vs_{name}"] = [lo, hi]
  return out
