"""Cox proportional hazards: the negative log partial likelihood (Breslow or Efron ties) and Harrell's C-index.

For risk scores ``eta_i`` (log hazard ratios), times ``t_i`` and event
indicators ``d_i``, with ``D(t)`` the subjects with an event at ``t`` and
``R(t) = {j : t_j >= t}`` the risk set, the partial log-likelihood is

* Breslow:  ``sum_t [ sum_{i in D(t)} eta_i - |D(t)| log sum_{j in R(t)} exp(eta_j) ]``;
* Efron:    ``sum_t [ sum_{i in D(t)} eta_i - sum_{l=0}^{|D(t)|-1} log( sum_{R(t)} exp(eta) - l/|D(t)| sum_{D(t)} exp(eta) ) ]``.

:func:`cox_loss` returns minus that, divided by the number of events, over
the entries with ``mask`` (padding excluded). Both are O(n^2) in memory
(pairwise risk-set matrix), fine for a batch of slides.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def cox_loss(eta, time, event, mask=None, *, ties: str = "breslow") -> jnp.ndarray:
  """Mean negative Cox partial log-likelihood per event. ``eta, time, event, mask``: ``[n]``."""
  eta = jnp.asarray(eta)
  mask = jnp.ones(eta.shape, bool) if mask is None else jnp.asarray(mask, bool)
  event = jnp.asarray(event).astype(bool) & mask
  time = jnp.asarray(time)
  shift = jax.lax.stop_gradient(jnp.max(jnp.where(mask, eta, -jnp.inf)))
  w = jnp.where(mask, jnp.exp(eta - shift), 0.0)  # exp(eta) up to a constant, for stability
  at_risk = time[None, :] >= time[:, None]  # [i, j]: j in R(t_i)
  risk_sum = at_risk.astype(w.dtype) @ w  # [i] sum over R(t_i)
  n_events = jnp.maximum(event.sum(), 1)
  if ties == "breslow":
    ll = jnp.where(event, eta - shift - jnp.log(risk_sum), 0.0)
    return -ll.sum() / n_events
  if ties != "efron":
    raise ValueError(f"cox_loss: ties must be 'breslow' or 'efron', got {ties!r}")
  tied = (time[None, :] == time[:, None]) & event[None, :]  # [i, j]: j is an event tied with t_i
  tie_sum = tied.astype(w.dtype) @ w  # [i] sum of exp(eta) over D(t_i)
  d = tied.sum(1)  # [i] |D(t_i)|
  # rank of event i among its tied events: the l in Efron's sum (each tied event takes one l)
  earlier = tied & (jnp.arange(eta.shape[0])[None, :] < jnp.arange(eta.shape[0])[:, None])
  rank = earlier.sum(1)
  denom = risk_sum - rank / jnp.maximum(d, 1) * tie_sum
  ll = jnp.where(event, eta - shift - jnp.log(jnp.where(event, denom, 1.0)), 0.0)
  return -ll.sum() / n_events


def concordance_index(risk: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
  """Harrell's C-index of risk scores (higher risk = earlier event), with lifelines' conventions.

  A pair ``(i, j)`` is comparable when ``i`` has an event and ``t_j > t_i``,
  or ``t_j == t_i`` and ``j`` is censored. It is concordant when ``risk_i >
  risk_j``; a tie in risk counts 1/2. Returns NaN without comparable pairs.
  """
  risk, time, event = (np.asarray(a, np.float64) for a in (risk, time, event))
  ev = event.astype(bool)
  comparable = ev[:, None] & ((time[None, :] > time[:, None]) | ((time[None, :] == time[:, None]) & ~ev[None, :]))
  pairs = comparable.sum()
  if pairs == 0:
    return float("nan")
  correct = (comparable & (risk[:, None] > risk[None, :])).sum()
  tied = (comparable & (risk[:, None] == risk[None, :])).sum()
  return float((correct + 0.5 * tied) / pairs)
