"""Benchmark: one GRPO step split into rollout, reference log-probs and update, with tokens/s.

  python benchmarks/grpo.py [--steps 5] [--prompts 8] [--group 8] [--new-tokens 40] [--prompt-len 96]

The policy is a random Qwen2-shaped decoder of the AlphaMed ``demo`` size
(hidden 128, 4 layers, vocab 768), float32. Each timed step: rollout
(``jaxmed.rl.rollout``: KV-cache sampling), reference log-probs (one forward
of the frozen policy), and the jitted update (``mu`` = 1). All three are
compiled first. The baseline for the update is the rollout's own forward
cost: the ratio printed is update time / reference time (a backward pass
costs about 2x a forward).

Not yet here: timing TRL's GRPOTrainer on the same model exported to HF
format (issue 6 leaves it open; ``trl`` is not installed on this machine).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import llm, rl

DEMO = llm.LMConfig(family="qwen2", vocab_size=768, hidden_size=128, intermediate_size=384, num_layers=4, num_heads=4,
                    num_kv_heads=2, head_dim=32, qkv_bias=True, tie_embeddings=True, eos_token_id=2)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--prompts", type=int, default=8)
  parser.add_argument("--group", type=int, default=8)
  parser.add_argument("--new-tokens", type=int, default=40)
  parser.add_argument("--prompt-len", type=int, default=96)
  args = parser.parse_args()
  model = llm.Decoder(DEMO)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  rng = np.random.default_rng(0)
  prompts = [rng.integers(3, DEMO.vocab_size, rng.integers(args.prompt_len // 2, args.prompt_len)).tolist()
             for _ in range(args.prompts)]
  tx = optax.adam(1e-4)
  logp_fn = rl.lm_logp_fn(model)
  update = rl.make_update(logp_fn, tx, beta=0.04)
  ref = jax.jit(logp_fn)
  opt_state = tx.init(params)
  kw = dict(group_size=args.group, max_new_tokens=args.new_tokens, eos_ids=(2,), pad_to=args.prompt_len)
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
        f"update / reference = {np.mean(times['update']) / np.mean(times['reference']):.1f}x (baseline: reference)")


if __name__ == "__main__":
  main()
