"""Benchmark: KV-cache decoding against recomputing the prefix, prefill FLOP/s, and HF generate.

  python benchmarks/llm.py [--new-tokens 256] [--batch 4] [--prompt 32] [--repeats 5] [--json PATH]

The "demo" model is a random Qwen2-style decoder (hidden 256, 4 layers, 8
query / 4 KV heads of 32, MLP 1024, vocab 4096; no download), float32.

* ``decode_kv_cache``: :func:`jaxmed.llm.sampler.generate` (greedy, no EOS),
  prefill + ``--new-tokens`` cached decode steps.
* ``decode_recompute`` (baseline): no cache; every step runs the whole
  model on the sequence so far (a growing buffer: one jitted forward per
  length, all compiled before timing) with the LM head on the last
  position only.
* ``prefill``: achieved FLOP/s of a jitted forward over the prompts, as a
  fraction of a measured dense float32 matmul peak on the same device.
* ``hf_generate``: where torch is installed, the same architecture in
  transformers, ``generate(do_sample=False)`` on CPU.

Everything is compiled before timing and every side is timed best of
``--repeats``. Prints ``name: value unit (ratio vs baseline)``; ``--json
PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from figures import write_figures
from jaxmed import llm
from jaxmed.llm.sampler import generate

DEMO = llm.LMConfig(family="qwen2", vocab_size=4096, hidden_size=256, intermediate_size=1024, num_layers=4,
                    num_heads=8, num_kv_heads=4, head_dim=32, qkv_bias=True, tie_embeddings=True,
                    max_position_embeddings=2048)


def _best_of(fn, repeats=3):
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return min(times)


def matmul_peak(n=2048) -> float:
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
  f = jax.jit(lambda x: x @ x)
  jax.block_until_ready(f(a))
  return 2 * n**3 / _best_of(lambda: f(a))


def prefill_flops(c: llm.LMConfig, batch: int, length: int) -> float:
  """Matmul FLOPs of one forward pass (projections, MLP, attention scores and values, head)."""
  per_token = 2 * (c.hidden_size * (c.num_heads + 2 * c.num_kv_heads) * c.head_dim
                   + c.num_heads * c.head_dim * c.hidden_size + 3 * c.hidden_size * c.intermediate_size)
  attention = 2 * 2 * length * c.num_heads * c.head_dim  # QK^T and PV per token (full, unmasked)
  return batch * length * (c.num_layers * (per_token + attention) + 2 * c.hidden_size * c.vocab_size)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--new-tokens", type=int, default=256)
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--prompt", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=5, help="every side is timed best of this many runs")
  parser.add_argument("--json", default="", help="write the figures to this JSON file")
  args = parser.parse_args()
  figures = {}
  b, p, n = args.batch, args.prompt, args.new_tokens
  model = llm.Decoder(DEMO)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  prompt = jax.random.randint(jax.random.PRNGKey(1), (b, p), 0, DEMO.vocab_size)
  ones = jnp.ones_like(prompt)

  cached = lambda: generate(model, params, prompt, ones, jax.random.PRNGKey(2), max_new_tokens=n,  # noqa: E731
                            greedy=True)["tokens"]
  jax.block_until_ready(cached())
  t_cache = _best_of(cached, args.repeats)

  # the baseline: no cache, the sequence grows by one token per step and the head runs on the last position
  # only; one jitted forward per length, all compiled by the warm-up call before timing
  last = jax.jit(lambda prm, x: model.apply({"params": prm}, x, last_only=True)[:, -1])

  def recompute():
    buf = prompt
    for _ in range(n):
      buf = jnp.concatenate([buf, jnp.argmax(last(params, buf), axis=-1)[:, None].astype(buf.dtype)], axis=1)
    return buf[:, p:]

  jax.block_until_ready(recompute())
  t_recompute = _best_of(recompute, args.repeats)
  same = np.array_equal(np.asarray(recompute()), np.asarray(cached()))

  forward = jax.jit(lambda prm, x: model.apply({"params": prm}, x))
  jax.block_until_ready(forward(params, prompt))
  t_prefill = _best_of(lambda: forward(params, prompt), args.repeats)
  achieved, peak = prefill_flops(DEMO, b, p) / t_prefill, matmul_peak()

  print(f"device: {jax.devices()[0].platform}, demo model {sum(x.size for x in jax.tree.leaves(params)) / 1e6:.2f}M "
        f"params, batch {b}, prompt {p}, {n} new tokens, float32")
  print(f"decode_recompute: {b * n / t_recompute:.1f} tokens/s (baseline; growing buffer, head on the last "
        f"position)")
  print(f"decode_kv_cache: {b * n / t_cache:.1f} tokens/s ({t_recompute / t_cache:.1f}x faster than recompute; "
        f"same tokens: {same})")
  print(f"prefill: {achieved / 1e9:.2f} GFLOP/s ({achieved / peak:.3f} of the measured matmul peak "
        f"{peak / 1e9:.1f} GFLOP/s)")
  figures.update({"decode_recompute/tokens_per_s": b * n / t_recompute, "decode_kv_cache/tokens_per_s": b * n / t_cache,
                  "decode_kv_cache/over_recompute": t_recompute / t_cache, "same_tokens": bool(same),
                  "prefill/gflops": achieved / 1e9, "prefill/fraction_of_peak": achieved / peak})
  try:
    import torch
    import transformers
  except ImportError:
    print("hf_generate: skipped (torch not installed)")
    write_figures(args.json, figures)
    return
  hf = transformers.AutoModelForCausalLM.from_config(DEMO.to_hf(), dtype=torch.float32).eval()
  x = torch.as_tensor(np.asarray(prompt))
  kw = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, attention_mask=torch.ones_like(x), pad_token_id=0)
  with torch.no_grad():
    hf.generate(x, **kw)
    t_hf = []
    for _ in range(args.repeats):
      t = time.perf_counter()
      hf.generate(x, **kw)
      t_hf.append(time.perf_counter() - t)
    t_hf = min(t_hf)
  print(f"hf_generate: {b * n / t_hf:.1f} tokens/s (torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"jaxmed KV-cache decode is {t_hf / t_cache:.2f}x its speed)")
  figures.update({"hf_generate/tokens_per_s": b * n / t_hf, "decode_kv_cache/over_hf_generate": t_hf / t_cache})
  write_figures(args.json, figures)


if __name__ == "__main__":
  main()
