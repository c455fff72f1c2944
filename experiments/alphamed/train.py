"""AlphaMed experiment: base model, difficulty by pass rate, GRPO with rule-based rewards, evaluation, ablations.

Stage 0 builds the synthetic medical world (``jaxmed.synth.medworld``),
trains a byte-level BPE tokenizer and a small Qwen2-shaped decoder on the
world's textbook sentences and an invented gazetteer's prose
(``jaxmed.synth.gazetteer``) plus non-medical think/answer exercises (recall
and reading questions about the gazetteer, puzzles; no medical QA), and saves
both as a Hugging Face checkpoint in ``<workdir>/base_model``.
With ``--config.base_model=<dir>`` that stage is skipped and a local
checkpoint is used the same way.

Stage 1 samples ``k`` answers per question from the base model: the pass
rate (accuracy reward) buckets questions into easy / medium / hard.
Stage 2 runs GRPO (no SFT) with the accuracy and format rewards.
Stage 3 evaluates greedily on the test split, by difficulty and hop count.
Ablations rerun stage 2 for ``ablation.steps`` steps on all training
questions (the reference), on a fraction of them, and on easy-only /
hard-only questions.

Each GRPO run writes ``<workdir>/<run>/metrics.jsonl`` and
``completions.jsonl`` and saves its final policy to ``<run>/final`` (a rerun
skips finished runs).
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import core, llm, rl
from jaxmed.io import load_mcqa_jsonl, r1_prompt
from experiments.alphamed.induction_probe import copy_accuracy, copy_rows, packed_copy_rows, word_filler
from jaxmed.llm.pretrain import causal_lm_loss, pack_documents
from jaxmed.llm.tokenizer import SPECIAL_TOKENS
from jaxmed.llm.sampler import generate
from jaxmed.synth import gazetteer, medworld

DIFFICULTIES = ("easy", "medium", "hard")


# ---- data ----

def load_items(config) -> dict:
  d = config.data
  if d.source == "synth":
    world = medworld.make_world(d.num_diseases, seed=config.seed)
    train, val, test = medworld.split_items(medworld.mcqa_items(world, seed=config.seed), seed=config.seed)
    return {"world": world, "train": train, "val": val, "test": test}
  if d.source == "jsonl":
    if not d.train_jsonl or not d.test_jsonl or not config.base_model:
      raise ValueError("config.data.source='jsonl' needs data.train_jsonl, data.test_jsonl and base_model")
    return {"world": None, "train": load_mcqa_jsonl(d.train_jsonl, source=d.jsonl_format), "val": [],
            "test": load_mcqa_jsonl(d.test_jsonl, source=d.jsonl_format)}
  raise ValueError(f"config.data.source must be 'synth' or 'jsonl', got {d.source!r}")


def chat_prompt(tok, item) -> str:
  return llm.render_chat(tok, [{"role": "user", "content": r1_prompt(item)}])


# ---- stage 0: the base model ----

def train_base_model(config, workdir, data, mesh) -> str:
  out = os.path.join(workdir, "base_model")
  if core.stage_done(out):   # written atomically with its tokenizer
    return out
  d, m, p = config.data, config.model, config.pretrain
  gaz = gazetteer.make_gazetteer(d.gazetteer_countries, seed=config.seed)
  # prose: the medical textbook and the gazetteer's facts; QA exercises only on non-medical content
  textbook = (medworld.textbook_corpus(data["world"], paraphrases=d.paraphrases, seed=config.seed)
              + gazetteer.gazetteer_corpus(gaz, seed=config.seed))
  textbook = [textbook[j] for j in np.random.default_rng(config.seed).permutation(len(textbook))]
  exercises = medworld.instruction_corpus(d.instruction_items, seed=config.seed, gazetteer=gaz,
                                          recall_fraction=d.recall_fraction, reading_fraction=d.reading_fraction)
  question_text = [r1_prompt(it) for it in data["train"]]  # tokenizer only: no answers are seen
  tok = llm.train_bpe_tokenizer(textbook + [r1_prompt(e) + e["response"] for e in exercises] + question_text,
                                os.path.join(workdir, "tokenizer"), vocab_size=m.vocab_size)
  eos = tok.convert_tokens_to_ids("<|im_end|>")
  # Facts are invented, so the base model must memorise them from the prose alone: the prose is
  # repeated (in a new order each time) so that it is about as many tokens as the exercises.
  docs = []
  for rep in range(d.prose_repeats):
    order = np.random.default_rng(config.seed + rep).permutation(len(textbook))
    docs += [tok(" ".join(textbook[j] for j in order[i:i + 4]))["input_ids"] + [eos]
             for i in range(0, len(order), 4)]
  docs += [tok(llm.render_chat(tok, [{"role": "user", "content": r1_prompt(e)},
                                     {"role": "assistant", "content": e["response"]}],
                               add_generation_prompt=False))["input_ids"] for e in exercises]
  longest = max(len(doc) for doc in docs)
  if longest > p.seq_len:   # pack_documents would cut the worked answer away from its question
    raise ValueError(f"pretrain.seq_len={p.seq_len} is shorter than the longest pretraining document "
                     f"({longest} tokens, an instruction exercise); raise pretrain.seq_len")
  packed = pack_documents(docs, p.seq_len, pad_id=tok.pad_token_id)
  packed["loss_mask"] = packed["mask"]
  copy_kw = dict(seq_len=p.seq_len, length=p.copy_length, span=p.copy_span, vocab=len(tok) - len(SPECIAL_TOKENS),
                 offset=len(SPECIAL_TOKENS))
  if p.copy_source == "words":   # copy rows of random corpus words instead of random BPE tokens
    vocab_words = sorted({w for line in textbook for w in line.split()})
    copy_kw["fill"] = word_filler([tok(" " + w)["input_ids"] for w in vocab_words])
  elif p.copy_source != "tokens":
    raise ValueError(f"pretrain.copy_source must be 'tokens' or 'words', got {p.copy_source!r}")
  if p.copy_fraction > 0:
    # Induction rows (not in AlphaMed, whose base is a real pretrained LLM): random BPE tokens or corpus
    # words (copy_source) with a repeated span, trained on the repeat only, so the tiny base model forms and keeps the in-context
    # copying circuit that restating a question and finding a value among the options both need. Without
    # them the demo-shaped model had not formed it after 2000 steps (induction_probe, docs/results.md).
    n_copy = int(round(p.copy_fraction / (1 - p.copy_fraction) * len(packed["tokens"])))
    extra = packed_copy_rows(np.random.default_rng(config.seed + 17), n_copy, **copy_kw)
    packed = {k: np.concatenate([packed[k], extra[k]]) for k in packed}
  cfg = llm.LMConfig(family="qwen2", vocab_size=len(tok), hidden_size=m.hidden_size,
                     intermediate_size=m.intermediate_size, num_layers=m.num_layers, num_heads=m.num_heads,
                     num_kv_heads=m.num_kv_heads, head_dim=m.head_dim, qkv_bias=True, tie_embeddings=True,
                     max_position_embeddings=1024, eos_token_id=eos)
  model = llm.Decoder(cfg)
  tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, p.lr, p.warmup, p.steps + p.copy_warmup_steps),
                   weight_decay=0.01)
  init = lambda r: model.init(r, jnp.zeros((1, 8), jnp.int32))["params"]  # noqa: E731
  state, sharding = core.create_train_state(init, tx, jax.random.PRNGKey(config.seed), mesh)
  step = core.make_train_step(lambda prm, b, r: causal_lm_loss(model, prm, b), tx, state_sharding=sharding,
                              mesh=mesh)
  ds = core.step_batches(core.ArraySource(packed), batch_size=p.batch_size, seed=config.seed)
  warm = p.copy_warmup_steps
  if warm:
    # a pure warm-up phase of copy rows before the corpus (the probe's setting, where the circuit forms)
    warm_ds = core.step_batches(core.ArraySource(packed_copy_rows(
        np.random.default_rng(config.seed + 19), warm * p.batch_size, **copy_kw)),
        batch_size=p.batch_size, seed=config.seed + 1)
  batch_at = (lambda s: warm_ds[s] if s < warm else ds[s - warm]) if warm else (lambda s: ds[s])
  state = core.train_loop(state, step, batch_at, mesh=mesh, run_dir=os.path.join(workdir, "pretrain"),
                          steps=p.steps + warm, save_every=config.train.save_every, keep=config.train.keep,
                          log_every=config.train.log_every, desc="stage 0: base model")
  llm.save_pretrained(model, jax.device_get(state.params), out, extras=(tok,))
  return out


# ---- sampling helpers ----

def sample_and_score(model, params, tok, items, *, k, temperature, max_new_tokens, rng, greedy=False,
                     chunk_prompts=16, pad_to=0) -> dict[str, np.ndarray]:
  """``k`` completions per item: accuracy and format rewards ``[n, k]`` and completion lengths."""
  acc, fmt, lengths = [], [], []
  eos = tuple(model.config.eos_ids)
  for start in range(0, len(items), chunk_prompts):
    part = items[start:start + chunk_prompts]
    prompts = [tok(chat_prompt(tok, it))["input_ids"] for it in part]
    rng, key = jax.random.split(rng)
    if greedy:
      batch = _greedy(model, params, prompts, max_new_tokens, eos, tok.pad_token_id, pad_to)
    else:
      batch = rl.rollout(model, params, prompts, key, group_size=k, max_new_tokens=max_new_tokens,
                         temperature=temperature, eos_ids=eos, pad_id=tok.pad_token_id, pad_to=pad_to)
    texts = decode(tok, batch)
    examples = [it for it in part for _ in range(k)]
    scores = rl.score(texts, examples, {"accuracy": 1.0, "format": 1.0})
    acc.append(scores[:, 0].reshape(-1, k))
    fmt.append(scores[:, 1].reshape(-1, k))
    lengths.append(np.asarray(batch["mask"]).sum(1).reshape(-1, k))
  return {"accuracy": np.concatenate(acc), "format": np.concatenate(fmt), "length": np.concatenate(lengths)}


def _greedy(model, params, prompts, max_new_tokens, eos, pad, pad_to=0):
  tokens, mask = llm.left_pad(prompts, pad, pad_to)
  out = generate(model, params, jnp.asarray(tokens), jnp.asarray(mask), jax.random.PRNGKey(0),
                             max_new_tokens=max_new_tokens, greedy=True, eos_ids=eos, pad_id=pad)
  return {"completion": out["tokens"], "mask": out["completion_mask"]}


def decode(tok, batch) -> list[str]:
  comp, mask = np.asarray(batch["completion"]), np.asarray(batch["mask"])
  return [tok.decode(c[m], skip_special_tokens=True) for c, m in zip(comp, mask)]


def difficulty_buckets(pass_rate: np.ndarray, easy_threshold: float) -> np.ndarray:
  """``"hard"`` if no sample was right, ``"easy"`` if the pass rate >= ``easy_threshold``, else ``"medium"``."""
  return np.where(pass_rate == 0, "hard", np.where(pass_rate >= easy_threshold, "easy", "medium"))


# ---- stage 2: GRPO ----

def grpo_run(run_dir, model, base_params, tok, items, config, steps, desc, pad_to=0, mesh=None
             ) -> tuple[dict, list[dict]]:
  """GRPO on ``items`` from ``base_params``; returns the final params and the per-step metrics.

  With a ``mesh``, the policy and the frozen reference are FSDP-sharded
  (``llm.param_shardings``) and each update splits the completions over the
  mesh's batch axes. Fewer questions than ``prompts_per_step`` are sampled
  with replacement, so every step has the same (compiled) shape.
  """
  final = os.path.join(run_dir, "final")
  if core.stage_done(final):
    return llm.load_pretrained(final)[1], core.read_metrics(run_dir)
  g = config.grpo
  os.makedirs(run_dir, exist_ok=True)
  weights = dict(zip(g.rewards, g.reward_weights))
  tx = optax.adam(g.lr)
  logp_fn = rl.lm_logp_fn(model, g.temperature)
  update = rl.make_update(logp_fn, tx, mu=g.mu, epsilon=g.epsilon, beta=g.beta, aggregation=g.aggregation,
                          mesh=mesh)
  ref_logp = jax.jit(logp_fn)
  if mesh is not None:
    base_params = jax.device_put(base_params, llm.param_shardings(base_params, mesh))
  params, opt_state = base_params, tx.init(base_params)
  writer = core.MetricWriter(run_dir)
  rows, rng = [], np.random.default_rng(config.seed)
  eos = tuple(model.config.eos_ids)
  with open(os.path.join(run_dir, "completions.jsonl"), "w") as log, core.progress_bar(steps, desc=desc) as bar:
    for step in range(steps):
      picked = [items[i] for i in rng.choice(len(items), g.prompts_per_step,
                                             replace=len(items) < g.prompts_per_step)]
      prompts = [tok(chat_prompt(tok, it))["input_ids"] for it in picked]
      t0 = time.perf_counter()
      batch = rl.rollout(model, params, prompts, jax.random.PRNGKey(config.seed * 100_003 + step),
                         group_size=g.group_size, max_new_tokens=g.max_new_tokens, temperature=g.temperature,
                         eos_ids=eos, pad_id=tok.pad_token_id, pad_to=pad_to)
      texts = decode(tok, batch)
      t_roll = time.perf_counter() - t0
      examples = [it for it in picked for _ in range(g.group_size)]
      params, opt_state, row, rewards = rl.score_and_update(
          update, params, opt_state, batch, texts, examples, weights, group_size=g.group_size,
          advantage_scale=g.advantage_scale, ref_logp_fn=ref_logp if g.beta else None, ref_params=base_params,
          t_rollout=t_roll, mu=g.mu)
      core.check_finite(row, step + 1, last_checkpoint=None)
      writer.write(step + 1, row)
      rows.append({"step": step + 1, **row})
      if (step + 1) % g.log_completions_every == 0 or step == 0:
        for t, ex, r in list(zip(texts, examples, rewards))[:g.group_size]:
          log.write(json.dumps({"step": step + 1, "prompt": chat_prompt(tok, ex), "completion": t,
                                "answer": ex["answer"], "reward": float(r)}) + "\n")
      core.update_progress(bar, 1, {"reward": row["reward_mean"]})
  writer.close()
  llm.save_pretrained(model, jax.device_get(params), final)
  return params, rows


# ---- the experiment ----

def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  mesh = core.make_mesh(config.mesh)
  data = load_items(config)
  base_dir = config.base_model or train_base_model(config, workdir, data, mesh)
  model, base_params = llm.load_pretrained(base_dir)
  tok = llm.load_tokenizer(base_dir)
  dcfg = config.difficulty
  # one prompt width for every batch: jitted sampling and updates compile once
  width = max(len(tok(chat_prompt(tok, it))["input_ids"]) for it in data["train"] + data["test"])
  kw = dict(k=dcfg.k, temperature=dcfg.temperature, max_new_tokens=config.eval.max_new_tokens, pad_to=width)

  # stage 1: difficulty of every train and test question from the base model's pass rate
  train_pass = sample_and_score(model, base_params, tok, data["train"], rng=jax.random.PRNGKey(1), **kw)
  test_pass = sample_and_score(model, base_params, tok, data["test"], rng=jax.random.PRNGKey(2), **kw)
  train_diff = difficulty_buckets(train_pass["accuracy"].mean(1), dcfg.easy_threshold)
  test_diff = difficulty_buckets(test_pass["accuracy"].mean(1), dcfg.easy_threshold)

  def evaluate(params) -> dict[str, np.ndarray]:
    out = sample_and_score(model, params, tok, data["test"], k=1, temperature=1.0,
                           max_new_tokens=config.eval.max_new_tokens, rng=jax.random.PRNGKey(3), greedy=True,
                           pad_to=width)
    return {"accuracy": out["accuracy"][:, 0], "format": out["format"][:, 0]}

  results = {"num_items/train": len(data["train"]), "num_items/test": len(data["test"])}
  for name in DIFFICULTIES:
    results[f"num_items/train/{name}"] = int((train_diff == name).sum())
  base_eval = evaluate(base_params)
  results["acc/base"] = float(base_eval["accuracy"].mean())
  results["format_rate/base"] = float(base_eval["format"].mean())
  results["pass_rate/base"] = float(test_pass["accuracy"].mean())
  # in-context copying of the base model (greedy accuracy on the repeat of a 24-token span; chance ~1/vocab)
  probe_tokens, probe_starts = copy_rows(np.random.default_rng(99), 32, length=64, span=24,
                                         vocab=len(tok) - len(SPECIAL_TOKENS))
  results["base/copy_accuracy"] = copy_accuracy(model, base_params, probe_tokens + len(SPECIAL_TOKENS),
                                                probe_starts, 24)

  # stage 2: GRPO on all training questions
  params, curve = grpo_run(os.path.join(workdir, "grpo"), model, base_params, tok, data["train"], config,
                           config.grpo.steps, "stage 2: GRPO", width, mesh)
  grpo_eval = evaluate(params)
  results["acc/grpo"] = float(grpo_eval["accuracy"].mean())
  results["format_rate/grpo"] = float(grpo_eval["format"].mean())
  hops = np.asarray([it.get("hops", 0) for it in data["test"]])
  for name in DIFFICULTIES:
    sel = test_diff == name
    for tag, ev in (("base", base_eval), ("grpo", grpo_eval)):
      results[f"acc/{tag}/{name}"] = float(ev["accuracy"][sel].mean()) if sel.any() else float("nan")
  for h in sorted(set(hops.tolist()) - {0}):
    for tag, ev in (("base", base_eval), ("grpo", grpo_eval)):
      results[f"acc/{tag}/hop{h}"] = float(ev["accuracy"][hops == h].mean())

  # ablations: quantity and difficulty mix
  rng = np.random.default_rng(config.seed + 7)
  runs = {"grpo": curve}
  # the reference row: all training questions (mixed difficulty), the ablations' step count
  p, runs["mixed_all"] = grpo_run(os.path.join(workdir, "ablation_mixed_all"), model, base_params, tok,
                                  data["train"], config, config.ablation.steps, "ablation mixed_all", width, mesh)
  results["ablation/mixed_all/acc"] = float(evaluate(p)["accuracy"].mean())
  for frac in config.ablation.quantity:
    idx = rng.choice(len(data["train"]), max(1, int(round(frac * len(data["train"])))), replace=False)
    subset = [data["train"][i] for i in idx]
    name = f"quantity_{frac:g}"
    p, runs[name] = grpo_run(os.path.join(workdir, f"ablation_{name}"), model, base_params, tok, subset, config,
                             config.ablation.steps, f"ablation {name}", width, mesh)
    results[f"ablation/{name}/acc"] = float(evaluate(p)["accuracy"].mean())
  for level in config.ablation.difficulty:
    subset = [it for it, dlev in zip(data["train"], train_diff) if dlev == level]
    name = f"difficulty_{level}"
    if not subset:
      results[f"ablation/{name}/acc"] = float("nan")
      continue
    p, runs[name] = grpo_run(os.path.join(workdir, f"ablation_{name}"), model, base_params, tok, subset, config,
                             config.ablation.steps, f"ablation {name}", width, mesh)
    results[f"ablation/{name}/acc"] = float(evaluate(p)["accuracy"].mean())
  results["ablation/steps"] = config.ablation.steps

  plot(runs, results, os.path.join(workdir, "grpo.png"))
  with core.atomic_file(os.path.join(workdir, "metrics.jsonl")) as tmp, open(tmp, "w") as f:
    for run in ["pretrain"] if not config.base_model else []:
      for row in core.read_metrics(os.path.join(workdir, run)):
        f.write(json.dumps({"run": run, **row}) + "\n")
    for name, rows in runs.items():
      for row in rows:
        f.write(json.dumps({"run": name, **row}) + "\n")
  return core.write_results(workdir, results)


def plot(runs, results, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(1, 3, figsize=(14, 3.6))
  for name, rows in runs.items():
    steps = [r["step"] for r in rows]
    ax[0].plot(steps, [r["reward_mean"] for r in rows], label=name)
    ax[1].plot(steps, [r.get("reward/accuracy_mean", np.nan) for r in rows], label=name)
  ax[0].set(xlabel="GRPO step", ylabel="mean reward", title="reward")
  ax[1].set(xlabel="GRPO step", ylabel="accuracy reward (train samples)", title="training accuracy")
  ax[0].legend(fontsize=7)
  x = np.arange(len(DIFFICULTIES))
  for off, tag in ((-0.2, "base"), (0.2, "grpo")):
    ax[2].bar(x + off, [results.get(f"acc/{tag}/{d}", np.nan) for d in DIFFICULTIES], 0.4, label=tag)
  ax[2].set_xticks(x, DIFFICULTIES)
  ax[2].set(ylabel="greedy test accuracy", title="by base-model difficulty")
  ax[2].legend()
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)
