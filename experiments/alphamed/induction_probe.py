"""Does a base model of the demo's shape learn in-context copying within the demo's budget?

Restating a question ("What is the first-line treatment of X?" ->
"The first-line treatment of X is") and looking a value up among lettered
options both need an *induction* circuit: find the earlier occurrence of the
current tokens and copy what follows it. This probe trains the same
Qwen2-shaped decoder (``llm.Decoder``, ``causal_lm_loss``, AdamW with warmup
and cosine decay, as stage 0 does) on random token rows that each contain
one repeated span, and reports the next-token accuracy on the repeat:

* ``fixed``: the span repeats at a fixed offset, which a positional head
  solves (the control: it shows the model and the metric can copy);
* ``random``: the span and its repeat sit at random offsets, which only an
  induction circuit solves.

  python -m experiments.alphamed.induction_probe --steps 2000 --layers 4 --hidden 192

Rows are ``length`` tokens over a ``vocab``-token alphabet with a span of
``span`` tokens repeated once, so ``span / length`` of the targets are
copyable and the rest are uniform noise (loss floor ``log(vocab)`` there).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import llm
from jaxmed.llm.pretrain import causal_lm_loss


def word_filler(words: list[list[int]]):
  """``(rng, n, length) -> [n, length]`` rows of randomly drawn words (each a token-id list), cut to length.

  Filling copy rows with real words keeps their token statistics those of the corpus (a word's tokens
  follow each other as in text) while the word order stays unpredictable, so only copying predicts a repeat.
  """
  def fill(rng, n: int, length: int) -> np.ndarray:
    out = np.empty((n, length), np.int64)
    for r in range(n):
      row: list[int] = []
      while len(row) < length:
        row += words[int(rng.integers(len(words)))]
      out[r] = row[:length]
    return out
  return fill


def copy_rows(rng, n: int, *, length: int = 64, span: int = 12, vocab: int = 256, offsets: str = "random",
              fill=None) -> tuple[np.ndarray, np.ndarray]:
  """``n`` rows ``[n, length]`` with one repeated span, and the repeat's start ``[n]``.

  ``fill``: ``(rng, n, length) -> [n, length]`` base rows (e.g. :func:`word_filler`); default uniform
  tokens in ``[0, vocab)``.
  """
  tokens = rng.integers(0, vocab, (n, length)) if fill is None else fill(rng, n, length)
  starts = np.empty(n, np.int64)
  for r in range(n):
    if offsets == "fixed":
      a, b = 2, 2 + span + 1
    else:
      a = int(rng.integers(0, length - 2 * span - 1))
      b = int(rng.integers(a + span + 1, length - span + 1))
    tokens[r, b:b + span] = tokens[r, a:a + span]
    starts[r] = b
  return tokens.astype(np.int32), starts


def packed_copy_rows(rng, n: int, *, seq_len: int, length: int, span: int, vocab: int, offset: int = 0,
                     fill=None) -> dict[str, np.ndarray]:
  """``n`` packed rows of ``seq_len // length`` copy rows each, as :func:`~jaxmed.llm.pack_documents` lays out.

  Tokens are shifted by ``offset`` (past a tokenizer's special tokens; not applied to ``fill``'s rows,
  which are real token ids). ``loss_mask`` marks only the
  copyable targets (the repeat after its first token): the other tokens are uniform noise whose loss
  would pull the model towards the uniform distribution without teaching it to copy.
  """
  per = seq_len // length
  tokens, starts = copy_rows(rng, n * per, length=length, span=span, vocab=vocab, fill=fill)
  if fill is not None:
    offset = 0
  target = np.zeros_like(tokens)
  for r, b in enumerate(starts):
    target[r, b + 1:b + span] = 1
  out = {"tokens": np.zeros((n, seq_len), np.int32), "mask": np.zeros((n, seq_len), np.int32),
         "segment_ids": np.full((n, seq_len), per + 1, np.int32), "loss_mask": np.zeros((n, seq_len), np.int32)}
  for j in range(per):
    cols = slice(j * length, (j + 1) * length)
    out["tokens"][:, cols] = tokens[j::per] + offset
    out["mask"][:, cols] = 1
    out["segment_ids"][:, cols] = j + 1
    out["loss_mask"][:, cols] = target[j::per]
  return out


def copy_accuracy(model, params, tokens: np.ndarray, starts: np.ndarray, span: int) -> float:
  """Greedy next-token accuracy on the repeated span after its first token (the copyable targets)."""
  pred = np.asarray(jnp.argmax(model.apply({"params": params}, jnp.asarray(tokens)), -1))
  hits = [pred[r, b:b + span - 1] == tokens[r, b + 1:b + span] for r, b in enumerate(starts)]
  return float(np.mean(hits))


def probe_decoder(*, layers: int, hidden: int, heads: int, vocab: int) -> llm.Decoder:
  """The stage-0 decoder's shape (Qwen2, tied embeddings, GQA with 3 query heads per KV head)."""
  return llm.Decoder(llm.LMConfig(family="qwen2", vocab_size=vocab, hidden_size=hidden,
                                  intermediate_size=hidden * 8 // 3, num_layers=layers, num_heads=heads,
                                  num_kv_heads=max(1, heads // 3), head_dim=32, qkv_bias=True,
                                  tie_embeddings=True, max_position_embeddings=1024, eos_token_id=0))


def run_probe(*, offsets: str, steps: int, layers: int, hidden: int, heads: int, lr: float, batch: int = 32,
              length: int = 64, span: int = 12, vocab: int = 256, eval_every: int = 250, seed: int = 0,
              verbose: bool = True) -> list[tuple[int, float, float]]:
  """Train on copy rows; ``[(step, loss, copy accuracy on fresh rows)]`` every ``eval_every`` steps."""
  model = probe_decoder(layers=layers, hidden=hidden, heads=heads, vocab=vocab)
  params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 8), jnp.int32))["params"]
  tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, lr, min(50, steps // 10), steps), weight_decay=0.01)
  opt = tx.init(params)

  @jax.jit
  def step(p, o, tokens):
    b = {"tokens": tokens, "mask": jnp.ones_like(tokens), "segment_ids": jnp.ones_like(tokens)}
    (loss, _), g = jax.value_and_grad(lambda q: causal_lm_loss(model, q, b), has_aux=True)(p)
    u, o = tx.update(g, o, p)
    return optax.apply_updates(p, u), o, loss

  rng, eval_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
  probe = copy_rows(eval_rng, 64, length=length, span=span, vocab=vocab, offsets=offsets)
  out, t0 = [], time.time()
  for i in range(1, steps + 1):
    params, opt, loss = step(params, opt, copy_rows(rng, batch, length=length, span=span, vocab=vocab,
                                                    offsets=offsets)[0])
    if i % eval_every == 0 or i == steps:
      out.append((i, float(loss), copy_accuracy(model, params, *probe, span)))
      if verbose:
        print(f"{offsets:>6} step {i:5d}  loss {out[-1][1]:.3f}  copy accuracy {out[-1][2]:.3f}  "
              f"({time.time() - t0:.0f} s)", flush=True)
  return out


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--steps", type=int, default=2000)
  ap.add_argument("--layers", type=int, default=4)
  ap.add_argument("--hidden", type=int, default=192)
  ap.add_argument("--heads", type=int, default=6)
  ap.add_argument("--lr", type=float, default=3e-3)
  ap.add_argument("--offsets", default="fixed,random")
  a = ap.parse_args(argv)
  for offsets in a.offsets.split(","):
    run_probe(offsets=offsets, steps=a.steps, layers=a.layers, hidden=a.hidden, heads=a.heads, lr=a.lr)


if __name__ == "__main__":
  main()
