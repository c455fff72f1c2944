"""Benchmark: one GRPO step on SmolLM2-135M-Instruct, jaxmed vs TRL's GRPOTrainer (and Tunix) in the same run.

  python benchmarks/grpo.py [--json PATH] [--steps 15] [--runs 3] [--prompts 2] [--group 4] [--new-tokens 32]
                            [--precision float32|bfloat16|both] [--no-trl] [--tiny]
                            [--tunix-python /tmp/tunix-venv/bin/python] [--tunix-runs N]

``--tunix-python`` names a Python in which ``google-tunix`` is installed (it pins its own jax, flax and
transformers, so it lives in a separate venv: ``python -m venv /tmp/tunix-venv &&
/tmp/tunix-venv/bin/pip install google-tunix==0.1.7``); Tunix's GRPOLearner then runs on the same
checkpoint, prompts and sizes (``benchmarks/tunix_grpo.py``) and ``tunix/over_jaxmed`` is reported.

The policy is SmolLM2-135M-Instruct (``jaxmed.llm.pretrained``; ``--tiny``
swaps in a random 2-layer Llama for a smoke run), exported with
``jaxmed.llm.save_pretrained`` so that both sides start from the same
weights. The prompts are open-book case questions
(``jaxmed.synth.medcases``) in the model's chat template, the same texts on
both sides. Both sides generate exactly ``--new-tokens`` tokens per
completion (jaxmed: no EOS; TRL: ``min_new_tokens``), with the same group
size, beta 0.04 (so the frozen reference's forward is part of the step),
epsilon 0.2, the ``grpo`` loss aggregation, one update per batch and the
same learning rate; rewards are random numbers (the reward function is not
what is timed).

Precision is matched: float32 on both sides (TRL 1.16's GRPOConfig defaults
to ``bf16=True`` and ``gradient_checkpointing=True``; both are turned off),
and with ``--precision both`` a second row with bfloat16 compute on both
sides (jaxmed ``compute_dtype``; TRL ``bf16=True``), float32 master weights
in both.

A jaxmed step is the rollout (``jaxmed.rl.rollout``: one prefill per
prompt, a KV-cache decode loop), the reference log-probs and the jitted
update (shared-prefix, vocabulary-chunked log-probs). TRL's step is timed by
a trainer callback, and its generation-and-scoring call and its log-prob
passes are timed inside it, which splits it into rollout, reference and
update. Each side runs ``--steps`` timed steps after one untimed (compiling)
step, ``--runs`` times; the reported time is the median over runs of the
mean step time. ``--json PATH`` writes the figures, including
``trl/over_jaxmed`` (TRL's step time divided by jaxmed's) and ``tunix/over_jaxmed``, nested as DESIGN.md says
(``{"trl": {"over_jaxmed": ...}}``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from figures import write_figures
from jaxmed import llm, rl

PARTS = ("rollout", "reference", "update")


def policy(tiny: bool, out_dir: str):
  """The checkpoint directory both sides load: SmolLM2-135M-Instruct (or a random tiny Llama) re-exported."""
  src = llm.pretrained("smollm2-135m-instruct")
  model, params = llm.load_pretrained(src)
  tok = llm.load_tokenizer(src)
  if tiny:
    cfg = llm.LMConfig(family="llama", vocab_size=model.config.vocab_size, hidden_size=64, intermediate_size=128,
                       num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16, tie_embeddings=True,
                       bos_token_id=model.config.bos_token_id, eos_token_id=model.config.eos_token_id)
    model = llm.Decoder(cfg)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  llm.save_pretrained(model, jax.device_get(params), out_dir, extras=(tok,))
  return out_dir


def prompt_texts(tok, n: int) -> list[str]:
  from jaxmed.io import r1_prompt
  from jaxmed.synth import medcases, medworld

  items = medcases.case_items(medworld.make_world(20, seed=0), n, seed=0, facts_per_passage=2)
  return [llm.render_chat(tok, [{"role": "user", "content": r1_prompt(it)}]) for it in items]


def time_jaxmed(model_dir: str, texts: list[str], args, dtype: str) -> dict[str, float]:
  """Median over runs of the mean seconds per step of each part."""
  model, params = llm.load_pretrained(model_dir, compute_dtype=dtype)
  tok = llm.load_tokenizer(model_dir)
  prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
  g = args.group
  logp = rl.lm_logp_fn(model, 1.0, group_size=g, with_entropy=True)
  ref = jax.jit(rl.lm_logp_fn(model, 1.0, group_size=g))
  tx = rl.grpo_optimizer(1e-6, 10 ** 6, schedule="constant")
  update = rl.make_grpo_step(logp, tx, beta=0.04)
  rng = np.random.default_rng(0)
  runs = []
  for run in range(args.runs):
    state, _ = rl.place_state(params, tx, run)
    times = {p: [] for p in PARTS}
    for step in range(args.steps + 1):   # step 0 compiles
      t0 = time.perf_counter()
      batch = rl.rollout(model, state.params, prompts, jax.random.PRNGKey(step), group_size=g,
                         max_new_tokens=args.new_tokens, eos_ids=(), pad_id=tok.pad_token_id)
      batch = jax.block_until_ready({k: v for k, v in batch.items() if k != "old_logp"})
      t1 = time.perf_counter()
      batch["ref_logp"] = jax.block_until_ready(ref(params, batch))
      t2 = time.perf_counter()
      batch["advantages"] = rl.group_advantages(jnp.asarray(rng.uniform(size=len(prompts) * g), jnp.float32), g)
      state, m = update(state, batch, jax.random.PRNGKey(step))
      jax.block_until_ready(m)
      t3 = time.perf_counter()
      if step:
        for p, dt in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2)):
          times[p].append(dt)
    runs.append({p: float(np.mean(v)) for p, v in times.items()})
  return {p: float(np.median([r[p] for r in runs])) for p in PARTS}


def time_trl(model_dir: str, texts: list[str], args, bf16: bool) -> dict[str, float] | None:
  """The same for TRL's GRPOTrainer (torch, CPU), or None when trl / torch are missing."""
  try:
    import datasets
    import torch
    import transformers
    import trl
  except ImportError as e:
    print(f"TRL baseline skipped: {e}")
    return None
  runs = []
  for run in range(args.runs):
    torch.manual_seed(run)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    steps: list[float] = []
    inside = {"generate_and_score": [], "logps": []}

    class Timer(transformers.TrainerCallback):
      def on_step_begin(self, *a, **k):
        self.t = time.perf_counter()

      def on_step_end(self, *a, **k):
        steps.append(time.perf_counter() - self.t)

    cfg = trl.GRPOConfig(output_dir=os.path.join(model_dir, f"trl-{run}"), use_cpu=True, report_to="none",
                         per_device_train_batch_size=len(texts) * args.group, num_generations=args.group,
                         max_completion_length=args.new_tokens, temperature=1.0, beta=0.04, epsilon=0.2,
                         loss_type="grpo", learning_rate=1e-6, max_steps=args.steps + 1, logging_steps=10 ** 6,
                         save_strategy="no", disable_tqdm=True, seed=run, bf16=bf16, gradient_checkpointing=False,
                         generation_kwargs={"min_new_tokens": args.new_tokens})
    rng = np.random.default_rng(run)
    trainer = trl.GRPOTrainer(model=model, args=cfg, processing_class=tok, callbacks=[Timer()],
                              reward_funcs=lambda completions, **k: rng.uniform(size=len(completions)).tolist(),
                              train_dataset=datasets.Dataset.from_dict({"prompt": texts * (args.steps + 2)}))
    gen, logps = trainer._generate_and_score_completions, trainer._get_per_token_logps_and_entropies
    state = {"in_gen": False}

    def timed_gen(*a, **k):
      state["in_gen"] = True
      t = time.perf_counter()
      try:
        return gen(*a, **k)
      finally:
        state["in_gen"] = False
        inside["generate_and_score"].append(time.perf_counter() - t)

    def timed_logps(*a, **k):
      t = time.perf_counter()
      out = logps(*a, **k)
      if state["in_gen"]:
        inside["logps"].append(time.perf_counter() - t)
      return out

    trainer._generate_and_score_completions, trainer._get_per_token_logps_and_entropies = timed_gen, timed_logps
    trainer.train()
    n = len(steps)
    gen_t = inside["generate_and_score"][1:n]
    # the reference (and any old-log-prob) passes run inside generate-and-score: split them off per step
    per_step_logps = np.add.reduceat(inside["logps"], np.linspace(0, len(inside["logps"]), n + 1).astype(int)[:-1])
    ref_t = list(per_step_logps[1:n])
    runs.append({"rollout": float(np.mean(gen_t) - np.mean(ref_t)), "reference": float(np.mean(ref_t)),
                 "update": float(np.mean(steps[1:]) - np.mean(gen_t))})
  print(f"trl {trl.__version__} GRPOTrainer, torch {torch.__version__} ({torch.get_num_threads()} threads)")
  return {p: float(np.median([r[p] for r in runs])) for p in PARTS}


def time_tunix(model_dir: str, texts: list[str], args, dtype: str) -> dict[str, float] | None:
  """Tunix's GRPOLearner on the same checkpoint and sizes, in its own environment (benchmarks/tunix_grpo.py)."""
  if not args.tunix_python:
    return None
  import subprocess

  work = tempfile.mkdtemp(prefix="tunix_bench_")
  spec = {"model_dir": model_dir, "prompts": texts, "group": args.group, "new_tokens": args.new_tokens,
          "steps": args.steps, "runs": args.tunix_runs or args.runs, "dtype": dtype, "lr": 1e-6}
  with open(os.path.join(work, "spec.json"), "w") as f:
    json.dump(spec, f)
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tunix_grpo.py")
  done = subprocess.run([args.tunix_python, script, os.path.join(work, "spec.json"), os.path.join(work, "out.json")])
  if done.returncode != 0:   # the other sides' figures are still written
    print(f"tunix: skipped, {script} exited with {done.returncode} (its traceback is above)")
    return None
  with open(os.path.join(work, "out.json")) as f:
    out = json.load(f)
  print(f"tunix: google-tunix {out.pop('tunix_version')}")
  return out


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=15)
  parser.add_argument("--runs", type=int, default=3)
  parser.add_argument("--prompts", type=int, default=2)
  parser.add_argument("--group", type=int, default=4)
  parser.add_argument("--new-tokens", type=int, default=32)
  parser.add_argument("--precision", choices=("float32", "bfloat16", "both"), default="both")
  parser.add_argument("--no-trl", action="store_true", help="skip the TRL GRPOTrainer baseline")
  parser.add_argument("--tunix-python", default="",
                      help="a Python with google-tunix installed: also time Tunix's GRPOLearner (tunix/over_jaxmed)")
  parser.add_argument("--tunix-runs", type=int, default=0, help="runs of the Tunix side (default: --runs)")
  parser.add_argument("--tiny", action="store_true", help="a random 2-layer Llama instead of SmolLM2 (smoke run)")
  parser.add_argument("--json", default="", help="write the figures to this JSON file")
  args = parser.parse_args()
  model_dir = policy(args.tiny, os.path.join(tempfile.mkdtemp(prefix="grpo_bench_"), "policy"))
  tok = llm.load_tokenizer(model_dir)
  texts = prompt_texts(tok, args.prompts)
  lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
  print(f"device: {jax.devices()[0].platform}; {args.prompts} prompts ({min(lengths)}-{max(lengths)} tokens) x "
        f"group {args.group} x {args.new_tokens} new tokens; {args.steps} timed steps per run, median of "
        f"{args.runs} runs")
  figures = {"config/prompts": args.prompts, "config/group": args.group, "config/new_tokens": args.new_tokens,
             "config/prompt_tokens_max": max(lengths), "config/steps": args.steps, "config/runs": args.runs,
             "config/tunix_runs": (args.tunix_runs or args.runs) if args.tunix_python else 0,
             "config/model": "random tiny llama" if args.tiny else "SmolLM2-135M-Instruct"}
  precisions = ("float32", "bfloat16") if args.precision == "both" else (args.precision,)
  print("| precision | side | rollout | reference | update | step |")
  print("|---|---|---|---|---|---|")
  for dtype in precisions:
    prefix = "" if dtype == "float32" else "bf16/"
    ours = time_jaxmed(model_dir, texts, args, dtype)
    sides = {"jaxmed": ours, "trl": None if args.no_trl else time_trl(model_dir, texts, args, bf16=dtype == "bfloat16"),
             "tunix": time_tunix(model_dir, texts, args, dtype)}
    for side, t in sides.items():
      if t is None:
        continue
      total = sum(t.values())
      print(f"| {dtype} | {side} | " + " | ".join(f"{t[p]:.2f} s" for p in PARTS) + f" | {total:.2f} s |")
      figures.update({f"{prefix}{side}/{p}_s": t[p] for p in PARTS})
      figures[f"{prefix}{side}/step_s"] = total
      if side == "jaxmed":
        continue
      ratio = total / sum(ours.values())
      figures[f"{prefix}{side}/over_jaxmed"] = ratio
      for p in PARTS:
        figures[f"{prefix}{side}/over_jaxmed_{p}"] = t[p] / ours[p]
      print(f"{dtype}: jaxmed / {side} step time = {1 / ratio:.2f} ({side}/over_jaxmed = {ratio:.2f}x; "
            + ", ".join(f"{p} {t[p] / ours[p]:.2f}x" for p in PARTS) + ")")
  write_figures(args.json, figures)


if __name__ == "__main__":
  main()
