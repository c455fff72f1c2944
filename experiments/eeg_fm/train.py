"""General time-series foundation models vs specialised EEG models (Turgut, Bott, Ploner, Rueckert 2025).

1. Data (``data.py``): synthetic recordings written as EDF+ with TUH-style
   labels and sidecar tables, read back through ``jaxmed.io.eeg`` (10-20
   names, montage, 50 Hz notch, 0.5-40 Hz band-pass, 100 Hz), windowed per
   task: age (10 s windows), seizure (10 s, 50% overlap), TUEV events (5 s).
2. Pretraining on generic series only (``jaxmed.synth.timeseries``): the
   OTiS-style encoder by masked-patch reconstruction, the TimesFM-style
   decoder by next-patch forecasting. Neither sees EEG before evaluation.
3. Protocols per general model and task: ``linear`` (frozen features,
   scikit-learn probe), ``mlp`` (frozen features, MLP head), ``full``
   (encoder + linear head fine-tuned). ``untrained_otis``: the same encoder
   untrained, linear probe (does pretraining matter?).
4. Specialised baselines from scratch (protocol ``scratch``): EEGNet and BIOT.
5. Context length: linear probes of both general models on 2-20 s windows
   (age and seizure), ``context/{task}/{model}/{seconds}``.
6. Localisation: Integrated Gradients of each seizure model's logit margin
   on test seizure windows, from background (non-seizure) training windows
   as baselines; ``localisation/top_k_hit/{model}``; also from a zero
   baseline (``top_k_hit_zero_baseline``) and by occlusion with background
   (``occlusion_top_k_hit``), see ``jaxmed/eeg/localisation.py``; topomaps.
7. Report: ``results.json`` (``{task}/{metric}/{model}/{protocol}``), figures
   ``topomaps.png``, ``context.png``, ``confusion.png``.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.eeg_fm import data as eeg_data
from sklearn.metrics import roc_auc_score

from experiments.eeg_fm import evaluate, figures, oracle
from jaxmed import core, eeg
from jaxmed.core.stats import bootstrap_metric
from jaxmed.synth.timeseries import multivariate_series, pretraining_corpus

TASK_NAMES = ("age", "seizure", "events")
CONTEXT_TASKS = ("age", "seizure")
GENERAL = ("otis", "timesfm")


# ---- models ----

def general_model(config, name: str):
  if name == "otis":
    o = config.otis
    return eeg.OTiSEncoder(o.patch, o.dim, o.depth, o.heads, o.num_variates)
  t = config.timesfm
  return eeg.TimesFMDecoder(t.input_patch, t.output_patch, t.dim, t.depth, t.heads, num_quantiles=t.num_quantiles)


def baseline_model(config, name: str, task: str):
  k = eeg.TASKS[task]["outputs"]
  if name == "eegnet":
    e = config.eegnet
    return eeg.EEGNet(k, int(config.data.sfreq // 2), e.f1, e.depth_multiplier, e.f2, e.dropout)
  b = config.biot
  return eeg.BIOT(k, int(config.data.sfreq), int(config.data.sfreq // 2), b.dim, b.depth, b.heads, 19)


def fit(config, workdir, name, init_fn, loss_fn, arrays, stage, mesh, seed, weight_decay=True) -> dict:
  """One stage through :func:`jaxmed.core.train_loop` (resumable); returns the trained variables."""
  s, t = config[stage], config.train
  sched = optax.warmup_cosine_decay_schedule(0.0, s.lr, max(1, s.steps // 10), s.steps)
  tx = optax.adamw(sched, weight_decay=t.weight_decay) if weight_decay else optax.adam(sched)
  ds = core.step_batches(core.ArraySource(arrays), batch_size=s.batch_size, seed=seed)
  state, sharding = core.create_train_state(init_fn, tx, jax.random.PRNGKey(seed), mesh)
  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  state = core.train_loop(state, step, lambda i: ds[i], mesh=mesh, run_dir=os.path.join(workdir, name),
                          steps=s.steps, save_every=t.save_every, keep=t.keep, log_every=t.log_every, desc=name)
  return jax.device_get(state.params)


def batched(fn, x: np.ndarray, batch: int = 32) -> np.ndarray:
  """``fn`` over ``x`` in fixed-size batches (the last one padded, so one compile)."""
  out = []
  for i in range(0, len(x), batch):
    chunk = x[i:i + batch]
    pad = batch - len(chunk)
    y = np.asarray(fn(np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)]) if pad else chunk))
    out.append(y[:len(chunk)])
  return np.concatenate(out)


# ---- 2. pretraining on generic series ----

def pretrain(config, workdir, name, mesh, tag: str = "", seed: int | None = None) -> dict:
  p = config.pretrain
  seed = config.seed if seed is None else seed
  corpus = pretraining_corpus(p.num_series, p.num_series if p.include_eeg else 0, p.length, seed=seed + 7)
  series = corpus["generic"]
  if p.include_eeg:                                        # interleave the two parts
    series = np.concatenate([series, corpus["eeg"]])
    series = series[np.random.default_rng(seed).permutation(len(series))]
  model = general_model(config, name)
  if name == "otis":
    v = config.otis.num_variates
    # multivariate samples: generic sources mixed into v variates (OTiS attends across variates; independent series
    # as variates leave nothing to learn there); EEG series, when included, fill whole samples of their own
    x = multivariate_series(p.num_series // v, v, p.length, seed=seed + 7)
    if p.include_eeg:
      eeg_x = corpus["eeg"][:(len(corpus["eeg"]) // v) * v].reshape(-1, v, p.length)
      x = np.concatenate([x, eeg_x])[np.random.default_rng(seed).permutation(len(x) + len(eeg_x))]
    arrays = {"x": x}
    pretrainer = eeg.OTiSPretrainer(model, mask_ratio=config.otis.mask_ratio)

    def loss_fn(params, batch, rng):
      mask = eeg.random_patch_mask(rng, (batch["x"].shape[0], v, p.length // config.otis.patch),
                                   config.otis.mask_ratio)
      pred, target = pretrainer.apply(params, batch["x"], mask)
      return eeg.masked_reconstruction_loss(pred, target, mask), {}

    init = lambda r: pretrainer.init(r, arrays["x"][:1], jnp.zeros((1, v, p.length // config.otis.patch), bool))  # noqa: E731
    params = fit(config, workdir, f"pretrain_{name}{tag}", init, loss_fn, arrays, "pretrain", mesh, seed + 11)
    return {"params": params["params"]["encoder"], "full": params["params"]}
  arrays = {"x": series[:, :(p.length // model.input_patch) * model.input_patch]}
  loss_fn = lambda params, batch, rng: (eeg.next_patch_loss(model, params, batch["x"]), {})  # noqa: E731
  init = lambda r: model.init(r, arrays["x"][:1])  # noqa: E731
  return fit(config, workdir, f"pretrain_{name}{tag}", init, loss_fn, arrays, "pretrain", mesh, seed + 12)


def otis_pretraining_check(config, variables, seed: int) -> tuple[float, float]:
  """``(masked MSE, zero-prediction MSE)`` of the pretrained OTiS on 64 fresh multivariate samples (normalised
  scale): whether the MAE learned anything beyond predicting the mean at this scale."""
  p, o = config.pretrain, config.otis
  x = jnp.asarray(multivariate_series(64, o.num_variates, p.length, seed=seed + 8))
  shape = (64, o.num_variates, p.length // o.patch)
  mask = eeg.random_patch_mask(jax.random.PRNGKey(seed + 9), shape, o.mask_ratio)
  pretrainer = eeg.OTiSPretrainer(general_model(config, "otis"), mask_ratio=o.mask_ratio)
  pred, target = pretrainer.apply({"params": variables["full"]}, x, mask)
  return (float(eeg.masked_reconstruction_loss(pred, target, mask)),
          float(eeg.masked_reconstruction_loss(jnp.zeros_like(target), target, mask)))


# ---- 3-4. protocols ----

def targets(task: str, y: np.ndarray, y_train: np.ndarray):
  """Training targets: z-scored age or int classes; and the (mean, std) to undo."""
  if eeg.TASKS[task]["kind"] == "regression":
    m, s = float(y_train.mean()), float(y_train.std() + 1e-8)
    return ((y - m) / s).astype(np.float32), (m, s)
  return y.astype(np.int32), (0.0, 1.0)


def supervised(config, workdir, name, task, model, init_vars, windows, mesh, stage, seed, head_only=False):
  """Trains ``model`` on the task's training windows; returns the test scores and the variables."""
  tr, te = windows["train"], windows["test"]
  y, (m, s) = targets(task, tr["y"], tr["y"])
  weights = jnp.asarray(eeg.class_weights(y, eeg.TASKS[task]["outputs"])) if eeg.TASKS[task]["kind"] != "regression" \
      else None
  has_bn = isinstance(model, eeg.EEGNet)

  def loss_fn(params, batch, rng):
    if has_bn:
      out, _ = model.apply(params, batch["x"], train=True, mutable=["batch_stats"], rngs={"dropout": rng})
    else:
      out = model.apply(params, batch["x"], train=True, rngs={"dropout": rng})
    return eeg.task_loss(task, out, batch["y"], weights), {}

  variables = fit(config, workdir, name, lambda r: init_vars(r), loss_fn, {"x": tr["x"], "y": y}, stage, mesh, seed,
                  weight_decay=not has_bn)
  if has_bn:
    variables = eeg.precise_batch_stats(model, variables, tr["x"])
  apply = jax.jit(lambda xb: model.apply(variables, xb, train=False))
  return eeg.scores_from_outputs(task, batched(apply, te["x"]), m, s), variables, apply


def mlp_probe(config, workdir, name, task, f_train, y_train, f_test, mesh, seed):
  head = eeg.MLPHead(eeg.TASKS[task]["outputs"], config.mlp.hidden)
  mean, std = f_train.mean(0), f_train.std(0) + 1e-6
  windows = {"train": {"x": (f_train - mean) / std, "y": y_train}, "test": {"x": (f_test - mean) / std}}
  init = lambda r: head.init(r, windows["train"]["x"][:1])  # noqa: E731
  return supervised(config, workdir, name, task, head, init, windows, mesh, "mlp", seed)[0]


# ---- 6. localisation ----

def localise(config, apply_single, windows) -> dict:
  """Top-k hit rates over seizure test windows (IG with background baselines, IG from zero, occlusion) and the
  mean per-electrode IG relevance ``[19]``."""
  te, tr, loc = windows["test"], windows["train"], config.localisation
  pos = [i for i in np.flatnonzero(te["y"] == 1) if te["focus"][i]][:loc.max_windows]
  background = jnp.asarray(tr["x"][np.flatnonzero(tr["y"] == 0)[:loc.num_baselines]])
  margin = lambda x: (lambda o: o[..., 1] - o[..., 0])(apply_single(x[None]))[0]  # noqa: E731
  ig_bg = jax.jit(lambda x: eeg.channel_relevance(margin, x, background, steps=loc.ig_steps)[0])
  ig_zero = jax.jit(lambda x: eeg.channel_relevance(margin, x, steps=loc.ig_steps)[0])
  occlude = jax.jit(lambda x: eeg.occlusion_relevance(margin, x, background[0]))
  names = windows["ch_names"]
  truth = [eeg.injected_channels(te["focus"][i], names) for i in pos]
  rel = {k: np.stack([np.asarray(fn(jnp.asarray(te["x"][i]))) for i in pos])
         for k, fn in (("ig", ig_bg), ("ig_zero", ig_zero), ("occlusion", occlude))}
  per_electrode = np.mean([eeg.electrode_relevance(r / (r.sum() + 1e-12), names, eeg_data.synth_eeg.CHANNELS)
                           for r in rel["ig"]], 0)
  return {k: eeg.top_k_hit(v, truth) for k, v in rel.items()}, per_electrode


# ---- one training seed ----

def run_seed(config, workdir, mesh, seed: int, windows: dict, context: dict) -> tuple[dict, dict]:
  """Pretraining, the three protocols, the untrained OTiS, the baselines and the context sweep for one seed.

  Returns test scores ``{(task, model, protocol): scores}`` (``("context", seconds, task, model)`` for the
  sweep) and the seizure/event appliers (for localisation and confusion matrices). Stage directories end in
  ``_seed{seed}``; the cohort is the same for every seed.
  """
  tag = f"_seed{seed}"
  base = config.seed + 1000 * seed
  scores, appliers = {}, {}
  pretrained = {name: pretrain(config, workdir, name, mesh, tag, base) for name in GENERAL}
  scores[("pretrain", "otis")] = otis_pretraining_check(config, pretrained["otis"], base)
  pretrained["otis"] = {"params": pretrained["otis"]["params"]}
  random_vars = general_model(config, "otis").init(jax.random.PRNGKey(base + 99), windows["age"]["train"]["x"][:1])
  for name in GENERAL + ("untrained_otis",):
    enc = general_model(config, "otis" if name == "untrained_otis" else name)
    variables = random_vars if name == "untrained_otis" else pretrained[name]
    feat = jax.jit(lambda x, v=variables, f=eeg.features_fn(enc): f(v, x))
    for task in TASK_NAMES:
      w = windows[task]
      f_tr, f_te = batched(feat, w["train"]["x"]), batched(feat, w["test"]["x"])
      scores[(task, name, "linear")] = eeg.linear_probe(task, f_tr, w["train"]["y"], f_te)
      if name == "untrained_otis":
        continue
      y_mlp, _ = targets(task, w["train"]["y"], w["train"]["y"])
      s = mlp_probe(config, workdir, f"mlp_{name}_{task}{tag}", task, f_tr, y_mlp, f_te, mesh, base + 21)
      if eeg.TASKS[task]["kind"] == "regression":
        s = s * w["train"]["y"].std() + w["train"]["y"].mean()
      scores[(task, name, "mlp")] = s
      clf = eeg.FoundationClassifier(enc, eeg.TASKS[task]["outputs"])

      def init_full(r, clf=clf, variables=variables, x0=w["train"]["x"][:1]):
        fresh = clf.init(r, x0)
        return {"params": {"encoder": variables["params"], "head": fresh["params"]["head"]}}

      scores[(task, name, "full")], _, appliers[(name, task)] = supervised(
          config, workdir, f"full_{name}_{task}{tag}", task, clf, init_full, w, mesh, "finetune", base + 31)
  for name in ("eegnet", "biot"):
    for task in TASK_NAMES:
      w, model = windows[task], baseline_model(config, name, task)
      init = lambda r, model=model, x0=w["train"]["x"][:2]: model.init(r, x0)  # noqa: E731
      scores[(task, name, "scratch")], _, appliers[(name, task)] = supervised(
          config, workdir, f"scratch_{name}_{task}{tag}", task, model, init, w, mesh, "scratch", base + 41)
  for seconds, ctx in context.items():
    for name in GENERAL:
      feat = jax.jit(lambda x, v=pretrained[name], f=eeg.features_fn(general_model(config, name)): f(v, x))
      for task in CONTEXT_TASKS:
        w = ctx[task]
        scores[("context", seconds, task, name)] = eeg.linear_probe(
            task, batched(feat, w["train"]["x"]), w["train"]["y"], batched(feat, w["test"]["x"]))
  return scores, appliers


def report(config, results: dict, scores: dict, windows: dict, context: dict, oracle_seizure=None) -> None:
  """Seed means, ``_ci`` companions (subject bootstrap), oracle CIs and paired comparisons into ``results``.

  ``oracle_seizure [N]``: the oracle's scores on the seizure test windows (None: no oracle rows)."""
  n = config.eval.bootstrap
  for key, preds in scores.items():
    if key[0] == "pretrain":
      results["pretrain/otis/masked_mse"] = float(np.mean([p[0] for p in preds]))
      results["pretrain/otis/zero_mse"] = float(np.mean([p[1] for p in preds]))
      continue
    if key[0] == "context":
      _, seconds, task, model = key
      te = context[seconds][task]["test"]
      s = evaluate.summarise(task, te["y"], preds, te["subject"], num_resamples=n)
      metric = evaluate.HEADLINE[task]
      results[f"context/{seconds:g}/{task}/{metric}/{model}"] = s[metric]
      results[f"context/{seconds:g}/{task}/{metric}/{model}_ci"] = s[f"{metric}_ci"]
      continue
    task, model, protocol = key
    te = windows[task]["test"]
    for metric, v in evaluate.summarise(task, te["y"], preds, te["subject"], num_resamples=n).items():
      name = metric[:-3] if metric.endswith("_ci") else metric
      results[f"{task}/{name}/{model}/{protocol}" + ("_ci" if metric.endswith("_ci") else "")] = v
  # oracle ceilings with the same subject bootstrap
  if oracle_seizure is not None:
    te = windows["seizure"]["test"]
    auroc = lambda yy, pp: float(roc_auc_score(yy, pp))  # noqa: E731
    v, lo, hi = bootstrap_metric(auroc, te["y"], [oracle_seizure], num_resamples=n, groups=te["subject"])
    results["seizure/auroc/oracle"], results["seizure/auroc/oracle_ci"] = v, [lo, hi]
    y_age, pred_age = oracle.age_predictions(config)
    v, lo, hi = bootstrap_metric(lambda yy, pp: float(np.abs(yy - pp).mean()), y_age, [pred_age],
                                 num_resamples=n)
    results["age/mae/oracle"], results["age/mae/oracle_ci"] = v, [lo, hi]
  # paired comparisons: the best trained (model, protocol) against every other row, per task
  for task in ("age", "seizure"):
    metric, te = evaluate.HEADLINE[task], windows[task]["test"]
    rows = [k for k in scores if k[0] == task and k[1] != "untrained_otis"]
    sign = -1.0 if metric == "mae" else 1.0
    best = max(rows, key=lambda k: sign * results[f"{task}/{metric}/{k[1]}/{k[2]}"])
    results[f"{task}/{metric}/best"] = f"{best[1]}/{best[2]}"
    for other in (k for k in scores if k[0] == task and k != best):
      d, lo, hi = evaluate.paired_difference(task, te["y"], scores[best], scores[other], te["subject"],
                                             num_resamples=n)
      results[f"compare/{task}/{metric}/{other[1]}/{other[2]}"] = d
      results[f"compare/{task}/{metric}/{other[1]}/{other[2]}_ci"] = [lo, hi]


# ---- the study ----

def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  mesh = core.make_mesh(config.mesh)
  results: dict = {}

  # 1. data
  edf_root = os.path.join(workdir, "edf")
  eeg_data.write_cohorts(config, edf_root)
  cohorts = eeg_data.read_cohorts(config, edf_root)
  ch_names = cohorts["age"]["train"][0]["ch_names"]
  windows = {}
  for task in TASK_NAMES:
    windows[task] = {split: eeg_data.task_windows(task, cohorts[task][split], config.data.window_s)
                     for split in ("train", "test")}
    windows[task]["ch_names"] = ch_names
    for split in ("train", "test"):
      results[f"data/{task}/{split}_windows"] = int(len(windows[task][split]["y"]))
    chance = eeg.chance_metrics(task, windows[task]["train"]["y"], windows[task]["test"]["y"])
    for k, v in chance.items():
      results[f"{task}/{k}/chance/constant"] = v

  # the oracle regenerates the synthetic test recordings; on any other cohort its labels differ and it is skipped
  oracle_y, oracle_s = oracle.seizure_scores(config, "test", config.data.window_s)
  if not np.array_equal(oracle_y, windows["seizure"]["test"]["y"]):
    print("eeg_fm: the seizure cohort is not the generator's (labels differ); no oracle row")
    oracle_s = None

  # 2-5. every training seed: pretraining, protocols, baselines, context sweep
  context = {seconds: {task: {split: eeg_data.task_windows(task, cohorts[task][split], float(seconds))
                              for split in ("train", "test")} for task in CONTEXT_TASKS}
             for seconds in config.context_s}
  scores: dict = {}
  appliers: dict = {}
  for k, seed in enumerate(config.seeds):
    seed_scores, seed_appliers = run_seed(config, workdir, mesh, int(seed), windows, context)
    for key, v in seed_scores.items():
      scores.setdefault(key, []).append(v)
    if k == 0:
      appliers = seed_appliers
  report(config, results, scores, windows, context, oracle_s)

  # 6. localisation on the seizure models
  maps = {}
  for model in GENERAL + ("eegnet", "biot"):
    apply = appliers[(model, "seizure")]
    hits, maps[model] = localise(config, apply, windows["seizure"])
    results[f"localisation/top_k_hit/{model}"] = hits["ig"]
    results[f"localisation/top_k_hit_zero_baseline/{model}"] = hits["ig_zero"]
    results[f"localisation/occlusion_top_k_hit/{model}"] = hits["occlusion"]
  focus_map = np.zeros(len(ch_names))
  te = windows["seizure"]["test"]
  for i in np.flatnonzero(te["y"] == 1):
    focus_map += eeg.electrode_relevance(np.isin(np.arange(len(ch_names)), eeg.injected_channels(
        te["focus"][i], ch_names)).astype(float), ch_names, eeg_data.synth_eeg.CHANNELS)
  maps["injected (truth)"] = focus_map

  # 7. report
  figures.topomaps(maps, os.path.join(workdir, "topomaps.png"))
  figures.context_curve(results, config.context_s, os.path.join(workdir, "context.png"))
  figures.headline(results, os.path.join(workdir, "headline.png"))
  figures.confusions(appliers, windows["events"], os.path.join(workdir, "confusion.png"))
  core.gather_run_metrics(workdir, sorted(d for d in os.listdir(workdir)
                                          if os.path.exists(os.path.join(workdir, d, "metrics.jsonl"))))
  return core.write_results(workdir, results)
