"""Benchmark: one GRPO step split into rollout, reference log-probs and update, with tokens/s; TRL alongside.

  python benchmarks/grpo.py [--steps 5] [--prompts 8] [--group 8] [--new-tokens 40] [--no-trl]

The policy is a random Qwen2-shaped decoder of 0.89M parameters (hidden 128,
4 layers: the AlphaMed ``demo`` size when this was first measured; the demo
base model is now 192 wide), float32, with a byte-level BPE tokenizer (768 tokens)
trained on the synthetic medical world; the prompts are that world's MCQA
questions in the R1 chat template. Each timed jaxmed step: rollout
(``jaxmed.rl.rollout``: KV-cache sampling), reference log-probs (one forward
of the frozen policy), and the jitted update (``mu`` = 1). All three are
compiled first.

Where ``torch`` and ``trl`` are installed, the same weights are exported with
``jaxmed.llm.save_pretrained`` and TRL's ``GRPOTrainer`` runs on CPU with the
same prompts, group size, completion length, beta, epsilon and loss
aggregation (``grpo``); its step time (generation + reference + update, first
step excluded) is the baseline and the ratio TRL / jaxmed is printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import llm, rl

DEMO = dict(family="qwen2", hidden_size=128, intermediate_size=384, num_layers=4, num_heads=4, num_kv_heads=2,
            head_dim=32, qkv_bias=True, tie_embeddings=True)


def prompt_texts(n: int, tok_dir: str):
  """``n`` R1-style MCQA prompts from the synthetic world, rendered with a tokenizer trained on that world."""
  from jaxmed.io import r1_prompt
  from jaxmed.synth import medworld

  world = medworld.make_world(30, seed=0)
  items = medworld.mcqa_items(world, seed=0)[:n]
  tok = llm.train_bpe_tokenizer(medworld.textbook_corpus(world) + [r1_prompt(it) for it in items], tok_dir,
                                vocab_size=768)
  return tok, [llm.render_chat(tok, [{"role": "user", "content": r1_prompt(it)}]) for it in items]


def run_trl(model_dir: str, texts: list[str], args) -> float | None:
  """Mean seconds per TRL GRPOTrainer step (first step excluded), or None when trl/torch are missing."""
  try:
    import datasets
    import torch
    import transformers
    import trl
  except ImportError as e:
    print(f"trl baseline skipped: {e}")
    return None
  torch.manual_seed(0)
  model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True)
  tok = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
  times: list[float] = []

  class Timer(transformers.TrainerCallback):
    def on_step_begin(self, *a, **k):
      self.t = time.perf_counter()

    def on_step_end(self, *a, **k):
      times.append(time.perf_counter() - self.t)

  cfg = trl.GRPOConfig(output_dir=os.path.join(model_dir, "trl"), use_cpu=True, report_to="none",
                       per_device_train_batch_size=args.prompts * args.group, num_generations=args.group,
                       max_completion_length=args.new_tokens, temperature=1.0, beta=0.04, epsilon=0.2,
                       loss_type="grpo", learning_rate=1e-4, max_steps=args.steps + 1, logging_steps=1000,
                       save_strategy="no", disable_tqdm=True, seed=0)
  rng = np.random.default_rng(0)
  trainer = trl.GRPOTrainer(model=model, reward_funcs=lambda completions, **k: rng.uniform(size=len(completions))
                            .tolist(), args=cfg, train_dataset=datasets.Dataset.from_dict({"prompt": texts}),
                            processing_class=tok, callbacks=[Timer()])
  trainer.train()
  print(f"trl {trl.__version__} GRPOTrainer (torch {torch.__version__}, {torch.get_num_threads()} threads): "
        f"{1e3 * np.mean(times[1:]):.0f} ms/step")
  return float(np.mean(times[1:]))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--prompts", type=int, default=8)
  parser.add_argument("--group", type=int, default=8)
  parser.add_argument("--new-tokens", type=int, default=40)
  parser.add_argument("--no-trl", action="store_true", help="skip the TRL GRPOTrainer baseline")
  args = parser.parse_args()
  tmp = tempfile.mkdtemp(prefix="grpo_bench_")
  tok, texts = prompt_texts(args.prompts, tmp)
  cfg = llm.LMConfig(vocab_size=len(tok), eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), **DEMO)
  model = llm.Decoder(cfg)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  llm.save_pretrained(model, jax.device_get(params), tmp)
  rng = np.random.default_rng(0)
  prompts = [tok(t)["input_ids"] for t in texts]
  args.prompt_len = max(map(len, prompts))
  tx = optax.adam(1e-4)
  logp_fn = rl.lm_logp_fn(model)
  update = rl.make_update(logp_fn, tx, beta=0.04)
  ref = jax.jit(logp_fn)
  opt_state = tx.init(params)
  kw = dict(group_size=args.group, max_new_tokens=args.new_tokens, eos_ids=tuple(cfg.eos_ids),
            pad_id=tok.pad_token_id, pad_to=args.prompt_len)
  times = {"rollout": [], "reference": [], "update": []}
  tokens = []
  for step in range(args.steps + 1):  # step 0 compiles
    t = time.perf_counter()
    batch = jax.block_until_ready(rl.rollout(model, params, prompts, jax.random.PRNGKey(step), **kw))
    t_roll = time.perf_counter() - t
    batch["advantages"] = rl.group_advantages(jnp.asarray(rng.uniform(size=len(prompts) * args.group),
                                                          jnp.float32), args.group)
    t = time.perf_counter()
    batch["ref_logp"] = jax.block_until_ready(ref(params, batch))
    t_ref = time.perf_counter() - t
    t = time.perf_counter()
    params, opt_state, m = update(params, opt_state, batch)
    jax.block_until_ready(m)
    t_upd = time.perf_counter() - t
    if step:
      times["rollout"].append(t_roll)
      times["reference"].append(t_ref)
      times["update"].append(t_upd)
      tokens.append(float(np.asarray(batch["mask"]).sum()))
  n = np.mean(tokens)
  b = args.prompts * args.group
  print(f"device: {jax.devices()[0].platform}, policy {sum(x.size for x in jax.tree.leaves(params)) / 1e6:.2f}M "
        f"params, {b} completions of <= {args.new_tokens} tokens, prompts padded to {args.prompt_len}")
  for name, ts in times.items():
    print(f"grpo_{name}: {1e3 * np.mean(ts):.0f} ms/step ({n / np.mean(ts):.0f} completion tokens/s)")
  total = sum(np.mean(ts) for ts in times.values())
  print(f"grpo_step: {1e3 * total:.0f} ms/step ({n / total:.0f} completion tokens/s); "
        f"update / reference = {np.mean(times['update']) / np.mean(times['reference']):.1f}x")
  if not args.no_trl:
    t_trl = run_trl(tmp, texts, args)
    if t_trl is not None:
      print(f"trl / jaxmed step time = {t_trl / total:.1f}x (baseline: TRL GRPOTrainer, same model and sizes)")


if __name__ == "__main__":
  main()
