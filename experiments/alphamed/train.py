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

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import core, llm, rl
from jaxmed.io import R1_INSTRUCTION, load_mcqa_jsonl, r1_prompt
from experiments.alphamed.figures import DIFFICULTIES, plot
from experiments.alphamed.induction_probe import copy_accuracy, copy_rows, packed_copy_rows, word_filler
from jaxmed.llm.pretrain import causal_lm_loss, pack_documents
from jaxmed.llm.tokenizer import SPECIAL_TOKENS
from jaxmed.llm.sampler import generate
from jaxmed.synth import gazetteer, medcases, medworld

# ---- data ----

def load_items(config) -> dict:
  """``{"world", "train", "val", "test"}`` item lists for ``config.data.source``.

  ``cases`` (the demo): open-book case questions (:mod:`jaxmed.synth.medcases`); the test split comes from
  a second world (other invented names), so GRPO cannot pass it by remembering training facts.
  ``synth``: the closed-book world questions, answerable only by a base model trained on the world here.
  ``jsonl``: MedQA / MedMCQA / PubMedQA files.
  """
  d = config.data
  if d.source == "cases":
    world = medworld.make_world(d.num_diseases, seed=config.seed)
    test_world = medworld.make_world(d.num_diseases, seed=config.seed + 1000)
    kinds = tuple(d.case_kinds)
    return {"world": world,
            "train": medcases.case_items(world, d.train_items, seed=config.seed, kinds=kinds,
                                         facts_per_passage=d.facts_per_passage),
            "val": [],
            "test": medcases.case_items(test_world, d.test_items, seed=config.seed + 1, kinds=kinds,
                                        facts_per_passage=d.facts_per_passage)}
  if d.source == "synth":
    world = medworld.make_world(d.num_diseases, seed=config.seed)
    train, val, test = medworld.split_items(medworld.mcqa_items(world, seed=config.seed), seed=config.seed)
    return {"world": world, "train": train, "val": val, "test": test}
  if d.source == "jsonl":
    if not d.train_jsonl or not d.test_jsonl or not config.base_model:
      raise ValueError("config.data.source='jsonl' needs data.train_jsonl, data.test_jsonl and base_model")
    return {"world": None, "train": load_mcqa_jsonl(d.train_jsonl, source=d.jsonl_format), "val": [],
            "test": load_mcqa_jsonl(d.test_jsonl, source=d.jsonl_format)}
  raise ValueError(f"config.data.source must be 'cases', 'synth' or 'jsonl', got {d.source!r}")


def chat_prompt(tok, item, prefill: str = "", instruction: str = R1_INSTRUCTION) -> str:
  """The R1 user turn in the chat template, then the start of the assistant turn and ``prefill``.

  ``prefill="<think>"`` opens the reasoning block for the model, as DeepSeek-R1-Zero's template does (its
  prompt ends in ``Assistant: <think>``); the rewards then read ``prefill + completion``.
  """
  return llm.render_chat(tok, [{"role": "user", "content": r1_prompt(item, instruction)}]) + prefill


def prompt_ids(tok, item, prefill: str = "", instruction: str = R1_INSTRUCTION) -> list[int]:
  """The rendered chat as token ids. The template already holds every special token (a Llama-3 template
  starts with ``<|begin_of_text|>``), so the tokenizer must not add a second BOS."""
  return tok(chat_prompt(tok, item, prefill, instruction), add_special_tokens=False)["input_ids"]


def pad_id(tok) -> int:
  """The tokenizer's pad id, else its EOS id (Llama-3 has no pad token; padded slots are masked anyway)."""
  for token_id in (tok.pad_token_id, tok.eos_token_id):
    if token_id is not None:
      return int(token_id)
  raise ValueError(f"tokenizer {tok.name_or_path!r} has neither a pad token nor an EOS token; "
                   "set one in its tokenizer_config.json")


def bucket(n: int, size: int) -> int:
  """``n`` rounded up to a multiple of ``size``: prompt widths come in a few shapes, each compiled once."""
  return -(-n // size) * size


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
                     chunk_prompts=16, width_bucket=64, prefill="", stop=(), instruction=R1_INSTRUCTION,
                     grader="accuracy", desc="sampling") -> dict[str, np.ndarray]:
  """``k`` completions per item: accuracy and format rewards ``[n, k]``, completion lengths and the texts.

  ``grader`` names the reward (:data:`jaxmed.rl.REWARDS`) that decides a sample's accuracy: ``accuracy``
  (the option letter) or ``option_accuracy`` (the letter or the option's text).

  Prompts go in chunks of ``chunk_prompts`` (the last chunk padded with repeats), left-padded to their
  longest prompt rounded up to ``width_bucket``: a few compiled shapes, not one per prompt length.
  """
  acc, fmt, lengths, texts = [], [], [], []
  eos, pad = tuple(model.text_config.eos_ids), pad_id(tok)
  bar = core.progress_bar(len(items), desc=desc)
  for start in range(0, len(items), chunk_prompts):
    part = items[start:start + chunk_prompts]
    n = len(part)
    prompts = [prompt_ids(tok, it, prefill, instruction) for it in part]
    prompts += [prompts[-1]] * (chunk_prompts - n)
    width = bucket(max(map(len, prompts)), width_bucket)
    rng, key = jax.random.split(rng)
    if greedy:
      tokens, mask = llm.left_pad(prompts, pad, width)
      out = generate(model, params, jnp.asarray(tokens), jnp.asarray(mask), key, max_new_tokens=max_new_tokens,
                     greedy=True, eos_ids=eos, pad_id=pad)
      batch = {"completion": out["tokens"][:n * k], "mask": out["completion_mask"][:n * k]}
    else:
      batch = rl.rollout(model, params, prompts, key, group_size=k, max_new_tokens=max_new_tokens,
                         temperature=temperature, eos_ids=eos, pad_id=pad, pad_to=width)
      batch = {"completion": batch["completion"][:n * k], "mask": batch["mask"][:n * k]}
    batch, part_texts = decode(tok, batch, prefill, stop)
    scores = rl.score(part_texts, [it for it in part for _ in range(k)], {grader: 1.0, "format": 1.0})
    acc.append(scores[:, 0].reshape(-1, k))
    fmt.append(scores[:, 1].reshape(-1, k))
    lengths.append(np.asarray(batch["mask"]).sum(1).reshape(-1, k))
    texts += part_texts
    core.update_progress(bar, n)
  bar.close()
  return {"accuracy": np.concatenate(acc), "format": np.concatenate(fmt), "length": np.concatenate(lengths),
          "texts": texts}


def decode(tok, batch, prefill: str = "", stop=()) -> tuple[dict, list[str]]:
  """``(batch, texts)``: the completions cut after their first ``stop`` string (the mask shortened to match)
  and their text after the prompt's ``prefill``, which is what the rewards read."""
  mask, texts = rl.stop_at_strings(tok, batch["completion"], batch["mask"], tuple(stop), prefill)
  return dict(batch, mask=jnp.asarray(mask)), texts


def difficulty_buckets(pass_rate: np.ndarray, easy_threshold: float) -> np.ndarray:
  """``"hard"`` if no sample was right, ``"easy"`` if the pass rate >= ``easy_threshold``, else ``"medium"``."""
  return np.where(pass_rate == 0, "hard", np.where(pass_rate >= easy_threshold, "easy", "medium"))


# ---- stage 2: GRPO ----

def grpo_run(run_dir, model, base_params, tok, items, config, steps, desc, mesh, rewards=None) -> tuple[dict, list]:
  """GRPO on ``items`` from ``base_params`` through the shared, resumable :func:`jaxmed.rl.grpo_train`.

  ``rewards`` (default ``grpo.rewards`` / ``grpo.reward_weights``) is ``{name: weight}``. Each step draws
  ``prompts_per_step`` questions from the step index (with replacement when there are fewer), so a
  resumed run draws the same ones. The update's log-probs encode each prompt once per group
  (:func:`jaxmed.rl.lm_logp_fn` with ``group_size``). Returns the final params and the per-step metrics.
  """
  final = os.path.join(run_dir, "final")
  if core.stage_done(final):
    return llm.load_pretrained(final, mesh=mesh, compute_dtype=model.config.dtype)[1], core.read_metrics(run_dir)
  g = config.grpo
  eos, pad = tuple(model.config.eos_ids), pad_id(tok)
  prefill = config.prompt_prefill
  encoded = [prompt_ids(tok, it, prefill, config.instruction) for it in items]

  def examples_at(step):
    pick = np.random.default_rng([config.seed, step]).choice(len(items), g.prompts_per_step,
                                                             replace=len(items) < g.prompts_per_step)
    return [dict(items[i], prompt_ids=encoded[i]) for i in pick]

  def sample_fn(params, examples, rng):
    prompts = [ex["prompt_ids"] for ex in examples]
    batch = rl.rollout(model, params, prompts, rng, group_size=g.group_size, max_new_tokens=g.max_new_tokens,
                       temperature=g.temperature, eos_ids=eos, pad_id=pad,
                       pad_to=bucket(max(map(len, prompts)), config.eval.width_bucket), mesh=mesh)
    return decode(tok, batch, prefill, config.stop_strings)

  weights = rewards or dict(zip(g.rewards, g.reward_weights))
  logp_fn = rl.lm_logp_fn(model, g.temperature, group_size=g.group_size, chunk=g.vocab_chunk, with_entropy=True)
  state, rows = rl.grpo_train(
      run_dir, params=base_params, mesh=mesh, seed=config.seed, logp_fn=logp_fn, sample_fn=sample_fn,
      examples_at=examples_at, tx=rl.grpo_optimizer(g.lr, steps, schedule=g.lr_schedule,
                                                    warmup_steps=g.warmup_steps, max_grad_norm=g.max_grad_norm),
      reward_weights=weights, steps=steps, group_size=g.group_size, mu=g.mu, epsilon=g.epsilon, beta=g.beta,
      aggregation=g.aggregation, advantage_scale=g.advantage_scale, ref_params=base_params,
      ref_logp_fn=rl.lm_logp_fn(model, g.temperature, group_size=g.group_size, chunk=g.vocab_chunk),
      save_every=g.save_every, log_completions_every=g.log_completions_every, desc=desc,
      micro_batch_size=g.micro_batch_size,
      completion_record=lambda ex: {"prompt": chat_prompt(tok, ex, prefill, config.instruction),
                                    "answer": ex["answer"]})
  llm.save_pretrained(model, state.params, final)   # gathered one param at a time
  return state.params, rows


# ---- the experiment ----

def load_base(config, workdir, data, mesh) -> tuple[str, bool]:
  """The base checkpoint directory and whether stage 0 trained it here.

  ``base_model``: ``""`` trains the small synthetic-world model (stage 0); a name of
  :data:`jaxmed.llm.gguf.REGISTRY` (``smollm2-135m-instruct``) converts the installed GGUF once; anything
  else is a local Hugging Face checkpoint directory.
  """
  if not config.base_model:
    return train_base_model(config, workdir, data, mesh), True
  return llm.checkpoint_dir(config.base_model), False


def check_grader(config) -> None:
  """The evaluation grader must be one of the GRPO rewards: the accuracy that GRPO optimises is the one reported."""
  if config.eval.grader not in config.grpo.rewards:
    raise ValueError(f"config.eval.grader={config.eval.grader!r} is not among config.grpo.rewards="
                     f"{tuple(config.grpo.rewards)}; set both to the same accuracy reward ('accuracy' or "
                     "'option_accuracy')")


def train_and_evaluate(config, workdir: str) -> dict:
  check_grader(config)
  core.open_workdir(workdir, config)
  mesh = core.make_mesh(config.mesh)
  data = load_items(config)
  base_dir, trained_here = load_base(config, workdir, data, mesh)
  model, base_params = llm.load_pretrained(base_dir, mesh=mesh, compute_dtype=config.model.compute_dtype)
  model = llm.with_options(model, remat=config.model.remat, attention=config.model.attention)
  tok = llm.load_tokenizer(base_dir)
  dcfg, ev = config.difficulty, config.eval
  kw = dict(k=dcfg.k, temperature=dcfg.temperature, max_new_tokens=ev.max_new_tokens, width_bucket=ev.width_bucket,
            chunk_prompts=ev.chunk_prompts, prefill=config.prompt_prefill, stop=config.stop_strings,
            instruction=config.instruction, grader=ev.grader)

  # stage 1: difficulty of every train and test question from the base model's pass rate
  train_pass = sample_and_score(model, base_params, tok, data["train"], rng=jax.random.PRNGKey(1),
                                desc="stage 1: pass rate (train)", **kw)
  test_pass = sample_and_score(model, base_params, tok, data["test"], rng=jax.random.PRNGKey(2),
                               desc="stage 1: pass rate (test)", **kw)
  train_diff = difficulty_buckets(train_pass["accuracy"].mean(1), dcfg.easy_threshold)
  test_diff = difficulty_buckets(test_pass["accuracy"].mean(1), dcfg.easy_threshold)

  def evaluate(params, name) -> dict[str, np.ndarray]:
    out = sample_and_score(model, params, tok, data["test"], k=1, temperature=1.0, max_new_tokens=ev.max_new_tokens,
                           rng=jax.random.PRNGKey(3), greedy=True, width_bucket=ev.width_bucket,
                           chunk_prompts=ev.chunk_prompts, prefill=config.prompt_prefill,
                           stop=config.stop_strings, instruction=config.instruction, grader=ev.grader,
                           desc=f"stage 3: greedy test ({name})")
    return {"accuracy": out["accuracy"][:, 0], "format": out["format"][:, 0], "texts": out["texts"]}

  results = {"num_items/train": len(data["train"]), "num_items/test": len(data["test"])}
  for name in DIFFICULTIES:
    results[f"num_items/train/{name}"] = int((train_diff == name).sum())
  base_eval = evaluate(base_params, "base")
  results["acc/base"] = float(base_eval["accuracy"].mean())
  results["format_rate/base"] = float(base_eval["format"].mean())
  results["pass_rate/base"] = float(test_pass["accuracy"].mean())
  if trained_here:
    # in-context copying of the small base model (greedy accuracy on the repeat of a 24-token span; chance
    # ~1/vocab); a real pretrained checkpoint copies, and its vocabulary is too large for this probe
    probe_tokens, probe_starts = copy_rows(np.random.default_rng(99), 32, length=64, span=24,
                                           vocab=len(tok) - len(SPECIAL_TOKENS))
    results["base/copy_accuracy"] = copy_accuracy(model, base_params, probe_tokens + len(SPECIAL_TOKENS),
                                                  probe_starts, 24)

  # stage 2: GRPO on all training questions, and the format-only control (same steps, no accuracy reward)
  params, curve = grpo_run(os.path.join(workdir, "grpo"), model, base_params, tok, data["train"], config,
                           config.grpo.steps, "stage 2: GRPO", mesh)
  grpo_eval = evaluate(params, "grpo")
  del params
  results["acc/grpo"] = float(grpo_eval["accuracy"].mean())
  results["format_rate/grpo"] = float(grpo_eval["format"].mean())
  runs = {"grpo": curve}
  if config.control.format_only:
    p, runs["format_only"] = grpo_run(os.path.join(workdir, "control_format_only"), model, base_params, tok,
                                      data["train"], config, config.grpo.steps, "control: format only", mesh,
                                      rewards={"format": 1.0})
    control = evaluate(p, "format_only")
    del p
    results["acc/format_only"] = float(control["accuracy"].mean())
    results["format_rate/format_only"] = float(control["format"].mean())
  # the floor (a uniform guess) and, for the case questions, the ceiling (a perfect reader of the question's
  # own text); the headline differences with paired bootstrap 95% CIs over the test questions
  results["acc/chance"] = float(np.mean([1 / len(it["options"]) for it in data["test"]]))
  # a second floor: the best policy that answers one letter for every question (read off the test labels, so
  # it bounds every letter-prior policy, such as a GRPO run that collapsed to one letter, from above)
  gold = [it["answer"] for it in data["test"]]
  results["acc/constant_letter_best"] = max(gold.count(x) for x in set(gold)) / len(gold)
  if config.data.source == "cases":
    results["acc/oracle"] = float(np.mean([medcases.oracle_answer(it) == it["answer"] for it in data["test"]]))
  pairs = [("base", base_eval)] + ([("format_only", control)] if config.control.format_only else [])
  for tag, other in pairs:
    diff, lo, hi = core.paired_bootstrap(grpo_eval["accuracy"], other["accuracy"], seed=config.seed)
    results[f"acc_diff/grpo-{tag}"], results[f"acc_diff/grpo-{tag}/ci95"] = diff, [lo, hi]
  hops = np.asarray([it.get("hops", 0) for it in data["test"]])
  for name in DIFFICULTIES:
    sel = test_diff == name
    results[f"num_items/test/{name}"] = int(sel.sum())
    for tag, ev_ in (("base", base_eval), ("grpo", grpo_eval)):
      results[f"acc/{tag}/{name}"] = float(ev_["accuracy"][sel].mean()) if sel.any() else float("nan")
  for h in sorted(set(hops.tolist()) - {0}):
    for tag, ev_ in (("base", base_eval), ("grpo", grpo_eval)):
      results[f"acc/{tag}/hop{h}"] = float(ev_["accuracy"][hops == h].mean())

  # ablations: quantity and difficulty mix, each from the base model with ablation.steps steps
  rng = np.random.default_rng(config.seed + 7)
  p, runs["mixed_all"] = grpo_run(os.path.join(workdir, "ablation_mixed_all"), model, base_params, tok,
                                  data["train"], config, config.ablation.steps, "ablation mixed_all", mesh)
  results["ablation/mixed_all/acc"] = float(evaluate(p, "mixed_all")["accuracy"].mean())
  for frac in config.ablation.quantity:
    idx = rng.choice(len(data["train"]), max(1, int(round(frac * len(data["train"])))), replace=False)
    subset = [data["train"][i] for i in idx]
    name = f"quantity_{frac:g}"
    p, runs[name] = grpo_run(os.path.join(workdir, f"ablation_{name}"), model, base_params, tok, subset, config,
                             config.ablation.steps, f"ablation {name}", mesh)
    results[f"ablation/{name}/acc"] = float(evaluate(p, name)["accuracy"].mean())
  for level in config.ablation.difficulty:
    subset = [it for it, dlev in zip(data["train"], train_diff) if dlev == level]
    name = f"difficulty_{level}"
    results[f"ablation/{name}/num_items"] = len(subset)
    if not subset:
      results[f"ablation/{name}/acc"] = float("nan")
      continue
    p, runs[name] = grpo_run(os.path.join(workdir, f"ablation_{name}"), model, base_params, tok, subset, config,
                             config.ablation.steps, f"ablation {name}", mesh)
    results[f"ablation/{name}/acc"] = float(evaluate(p, name)["accuracy"].mean())
  results["ablation/steps"] = config.ablation.steps

  with core.atomic_file(os.path.join(workdir, "completions.jsonl")) as tmp, open(tmp, "w") as f:
    for i, it in enumerate(data["test"]):   # greedy test completions of the base and the GRPO policy
      f.write(json.dumps({"kind": it.get("kind", ""), "hops": it.get("hops", 0), "answer": it["answer"],
                          "prompt": chat_prompt(tok, it, config.prompt_prefill, config.instruction),
                          "base_completion": base_eval["texts"][i],
                          "grpo_completion": grpo_eval["texts"][i]}) + "\n")
  plot(runs, results, os.path.join(workdir, "grpo.png"), ev.grader)
  with core.atomic_file(os.path.join(workdir, "metrics.jsonl")) as tmp, open(tmp, "w") as f:
    for run in ["pretrain"] if trained_here else []:
      for row in core.read_metrics(os.path.join(workdir, run)):
        f.write(json.dumps({"run": run, **row}) + "\n")
    for name, rows in runs.items():
      for row in rows:
        f.write(json.dumps({"run": name, **row}) + "\n")
  return core.write_results(workdir, results)

