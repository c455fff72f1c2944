"""The induction probe's control: a model that can copy at a fixed offset is measured as copying."""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.alphamed import induction_probe as P


def test_copy_rows_repeat_one_span():
  rng = np.random.default_rng(0)
  for offsets in ("fixed", "random"):
    tokens, starts = P.copy_rows(rng, 50, length=40, span=8, vocab=64, offsets=offsets)
    for row, b in zip(tokens, starts):
      span = row[b:b + 8]
      earlier = [a for a in range(b - 8) if (row[a:a + 8] == span).all()]
      assert earlier, "the repeated span occurs earlier in the row"


def test_word_filled_copy_rows_are_words_with_one_repeat():
  words = [[3, 4], [5], [6, 7, 8], [9]]
  fill = P.word_filler(words)
  tokens, starts = P.copy_rows(np.random.default_rng(1), 30, length=40, span=8, fill=fill)
  assert tokens.shape == (30, 40) and set(np.unique(tokens)) <= {3, 4, 5, 6, 7, 8, 9}
  for row, b in zip(tokens, starts):
    assert any((row[a:a + 8] == row[b:b + 8]).all() for a in range(b - 8))
  # outside the copied span a row parses into whole words (the last one may be cut by the row's end)
  row = fill(np.random.default_rng(2), 1, 40)[0].tolist()
  i = 0
  while i < 37:
    w = next(w for w in words if row[i:i + len(w)] == w)
    i += len(w)
  # packed rows keep the fill's ids (no special-token offset) and mark only the repeat
  packed = P.packed_copy_rows(np.random.default_rng(3), 2, seq_len=80, length=40, span=8, vocab=64, offset=7,
                              fill=fill)
  assert set(np.unique(packed["tokens"])) <= {3, 4, 5, 6, 7, 8, 9}
  assert packed["loss_mask"].sum() == 2 * 2 * 7


def test_fixed_offset_copy_is_learned_and_measured():
  hist = P.run_probe(offsets="fixed", steps=400, layers=2, hidden=64, heads=2, lr=3e-3, length=32, span=8,
                     vocab=64, eval_every=400, verbose=False)
  step, loss, acc = hist[-1]
  assert acc > 0.9                     # the metric sees a working copy
  model = P.probe_decoder(layers=1, hidden=64, heads=2, vocab=64)   # untrained: chance is 1/64
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"]
  rows = P.copy_rows(np.random.default_rng(5), 64, length=32, span=8, vocab=64, offsets="fixed")
  assert P.copy_accuracy(model, params, *rows, 8) < 0.2
