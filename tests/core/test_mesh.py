"""Mesh construction and sharding rules."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxmed import core


def test_make_mesh_axes_and_absorbing_axis():
  m = core.make_mesh()
  assert m.axis_names == ("data", "fsdp", "model") and m.shape["data"] == 8
  m = core.make_mesh({"data": 2, "fsdp": -1})
  assert (m.shape["data"], m.shape["fsdp"], m.shape["model"]) == (2, 4, 1)
  assert core.make_mesh(devices=jax.devices()[:1]).size == 1


@pytest.mark.parametrize("cfg", [{"data": 3}, {"data": -1, "fsdp": -1}, {"pipeline": 2}, {"data": 2, "fsdp": 2}])
def test_make_mesh_rejects_bad_shapes(cfg):
  with pytest.raises(ValueError, match="mesh config"):
    core.make_mesh(cfg)


def test_shard_batch_splits_leading_axis_and_checks_divisibility():
  mesh = core.make_mesh()
  x = np.arange(16 * 3, dtype=np.float32).reshape(16, 3)
  g = core.shard_batch({"x": x}, mesh)["x"]
  assert g.shape == (16, 3) and len(g.addressable_shards) == 8
  assert {s.data.shape for s in g.addressable_shards} == {(2, 3)}
  np.testing.assert_array_equal(np.asarray(g), x)
  with pytest.raises(ValueError, match="not divisible by the 8 batch shards"):
    core.shard_batch({"x": x[:12]}, mesh)


def test_tree_shardings_rules_and_fsdp_default():
  tree = {"dense": {"kernel": jax.ShapeDtypeStruct((256, 128), np.float32),
                    "bias": jax.ShapeDtypeStruct((128,), np.float32)},
          "head": {"kernel": jax.ShapeDtypeStruct((128, 10), np.float32)}}
  mesh = core.make_mesh({"data": 2, "fsdp": 2, "model": 2})
  sh = core.tree_shardings(tree, mesh, rules=[(r"head/kernel", P(None, "model"))], fsdp_min_size=1000)
  assert sh["head"]["kernel"].spec == P(None, "model")
  assert sh["dense"]["kernel"].spec == P("fsdp", None)  # largest divisible dim
  assert sh["dense"]["bias"].spec == P()  # small leaves stay replicated
  plain = core.tree_shardings(tree, core.make_mesh())
  assert all(s.spec == P() for s in jax.tree.leaves(plain))


def test_fsdp_state_matches_replicated_state():
  import jax.numpy as jnp
  import optax
  init = lambda r: {"w": jax.random.normal(r, (64, 512))}  # noqa: E731
  tx = optax.adam(1e-3)
  a, _ = core.create_train_state(init, tx, jax.random.PRNGKey(0), core.make_mesh())
  b, sh = core.create_train_state(init, tx, jax.random.PRNGKey(0), core.make_mesh({"data": 1, "fsdp": 8}))
  assert sh.params["w"].spec == P(None, "fsdp")
  assert len({s.data.shape for s in b.params["w"].addressable_shards}) == 1
  np.testing.assert_array_equal(np.asarray(a.params["w"]), np.asarray(b.params["w"]))
  assert jnp.asarray(b.opt_state[0].mu["w"]).sharding.spec == P(None, "fsdp")
