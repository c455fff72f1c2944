"""HyperMorph-style hypernetwork: one network maps the regularisation weight to all registration weights.

HyperMorph (Hoopes et al., 2021/2022) feeds the hyperparameter ``lambda`` to
an MLP (HyperMorph's: 6 dense ReLU layers of 128 units) whose linear heads
emit every kernel and bias of the registration network. The registration net
stays a pure function of ``(generated_params, moving, fixed)``, so a whole
curve of models is one ``jax.vmap`` over ``lambda``.

Loss (HyperMorph, Eq. 3): ``(1 - lambda) * L_sim + lambda * L_smooth`` with
``lambda ~ U[0, 1]``, of which a fraction (HyperMorph: 20%) may be drawn at
the endpoints 0 and 1 so the extremes are trained too. Measured here, the
draws at ``lambda = 1`` (pure smoothness, whose optimum is the identity) pull
the hypernetwork's neighbouring lambdas towards the identity; the ARC
experiment sets the fraction to 0 (see its config). The ``"log_weight"`` weighting instead
reads ``lambda`` as ``w = 10**(4 lambda - 3)``, a log-uniform weight in
``[1e-3, 1e1]``, and uses ``L_sim + w * L_smooth``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

WEIGHTINGS = ("convex", "log_weight")


class HyperNetwork(nn.Module):
  """``lambda`` (a scalar) -> a list of arrays with ``target_shapes``.

  Attributes:
    target_shapes: shapes of the generated leaves, in ``tree_flatten`` order.
    hidden: widths of the dense ReLU trunk (HyperMorph: six of 128).
    head_scale: variance scale of the head kernels; small, so the generated
      network starts near its head biases (see :meth:`HyperMorph.init`).
  """
  target_shapes: tuple[tuple[int, ...], ...]
  hidden: Sequence[int] = (128,) * 6
  head_scale: float = 1e-2

  @nn.compact
  def __call__(self, lam):
    h = jnp.reshape(jnp.asarray(lam, jnp.float32), (1,))
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
    head_init = nn.initializers.variance_scaling(self.head_scale, "fan_in", "normal")
    return [nn.Dense(math.prod(shape), kernel_init=head_init, name=f"head_{i}")(h).reshape(shape)
            for i, shape in enumerate(self.target_shapes)]


@dataclasses.dataclass(frozen=True)
class HyperMorph:
  """A registration network and the hypernetwork that generates its params.

  Build it with :func:`make_hypermorph`. ``init(rng)`` gives the hypernetwork
  params (the only trainable ones); ``generate(hp, lam)`` the registration
  params for one ``lam``; ``apply(hp, lam, m, f)`` registers ``[B, *S, 1]``
  images and returns ``(disp, field)``. All are pure and jit/vmap-able.
  """
  net: nn.Module
  hyper: HyperNetwork
  treedef: Any
  example_shape: tuple[int, ...]

  def init(self, rng: jax.Array) -> Any:
    """Hypernetwork params whose head biases hold a standard init of ``net``.

    At the start every ``lambda`` therefore generates a properly initialised
    registration network (He-scaled kernels, a near-zero flow head), and the
    ``lambda``-dependent part grows from the small head kernels. This is our
    choice for stable training; HyperMorph's Keras code uses default
    initialisers for its heads.
    """
    net_rng, hyper_rng = jax.random.split(rng)
    example = jnp.zeros(self.example_shape, jnp.float32)
    leaves = jax.tree.leaves(self.net.init(net_rng, example, example))
    heads = dict(self.hyper.init(hyper_rng, jnp.zeros(()))["params"])
    for i, leaf in enumerate(leaves):
      heads[f"head_{i}"] = {**heads[f"head_{i}"], "bias": leaf.reshape(-1).astype(jnp.float32)}
    return {"params": heads}

  def generate(self, hyper_params, lam) -> Any:
    return jax.tree.unflatten(self.treedef, self.hyper.apply(hyper_params, lam))

  def apply(self, hyper_params, lam, moving, fixed, dtype=jnp.float32):
    """Registers ``[B, *S, 1]`` images with the net for ``lam``; ``dtype`` is the compute dtype (e.g. bfloat16)."""
    return apply_in_dtype(self.net, self.generate(hyper_params, lam), moving, fixed, dtype)


def apply_in_dtype(net: nn.Module, params, moving, fixed, dtype=jnp.float32):
  """``net.apply`` with params and images cast to ``dtype``; the returned ``(disp, field)`` are float32.

  Mixed precision for the convolutions and attention: the master params stay
  float32 (the cast is inside the differentiated function), and the
  transformation model (SVF integration, warping) runs in float32 because the
  :class:`~jaxmed.registration.networks.RegistrationNet` casts the field back
  before integrating it.
  """
  dtype = jnp.dtype(dtype)
  if dtype == jnp.float32:
    return net.apply(params, moving, fixed)
  cast = jax.tree.map(lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params)
  return net.apply(cast, moving.astype(dtype), fixed.astype(dtype))


def make_hypermorph(net: nn.Module, example_shape: tuple[int, ...], *, hidden: Sequence[int] = (128,) * 6,
                    head_scale: float = 1e-2) -> HyperMorph:
  """The hypernetwork for ``net`` on inputs of shape ``example_shape`` (``[B, *S, 1]``); shapes only, no compute."""
  example = jax.ShapeDtypeStruct(tuple(example_shape), jnp.float32)
  template = jax.eval_shape(net.init, jax.random.PRNGKey(0), example, example)
  leaves, treedef = jax.tree.flatten(template)
  hyper = HyperNetwork(tuple(tuple(x.shape) for x in leaves), tuple(hidden), head_scale)
  return HyperMorph(net, hyper, treedef, tuple(example_shape))


def head_kernel_labels(hyper_params) -> Any:
  """``"head_kernel"`` for the heads' kernels, ``"rest"`` elsewhere: labels for ``optax.multi_transform``.

  Lets the head kernels take a smaller step than the rest (see the ARC
  config's ``hyper.head_kernel_lr_scale``).
  """
  def label(path, _):
    names = [str(getattr(k, "key", k)) for k in path]
    return "head_kernel" if names[-1] == "kernel" and any(n.startswith("head_") for n in names) else "rest"
  return jax.tree_util.tree_map_with_path(label, hyper_params)


def sample_lambdas(rng: jax.Array, n: int, *, endpoint_prob: float = 0.2) -> jax.Array:
  """``n`` draws of ``lambda ~ U[0, 1]``; a fraction ``endpoint_prob`` is 0 or 1 (HyperMorph)."""
  k_u, k_end, k_side = jax.random.split(rng, 3)
  lam = jax.random.uniform(k_u, (n,))
  end = jax.random.bernoulli(k_end, endpoint_prob, (n,))
  side = jax.random.bernoulli(k_side, 0.5, (n,)).astype(jnp.float32)
  return jnp.where(end, side, lam)


def loss_weights(lam: jax.Array, weighting: str = "convex") -> tuple[jax.Array, jax.Array]:
  """``(a, b)`` in ``a * L_sim + b * L_smooth`` for hyper input ``lam`` in ``[0, 1]``.

  ``"convex"``: ``(1 - lam, lam)``. ``"log_weight"``: ``(1, 10**(4 lam - 3))``,
  i.e. a log-uniform smoothness weight in ``[1e-3, 1e1]`` when ``lam`` is uniform.
  """
  if weighting == "convex":
    return 1.0 - lam, lam
  if weighting == "log_weight":
    return jnp.ones_like(lam), 10.0 ** (4.0 * lam - 3.0)
  raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
