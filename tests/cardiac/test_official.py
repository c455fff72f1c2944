"""An official-layout ViTa checkpoint (written here with the official tensor names and shapes) loads into our
encoder: the forward pass equals a PyTorch reference of the official encoder, and the export inverts the load."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import jax.numpy as jnp  # noqa: E402

from jaxmed import cardiac  # noqa: E402
from jaxmed.cardiac import official  # noqa: E402

D, HEADS, DEPTH, PATCH = 33, 3, 2, (5, 8, 8)
SHAPE = (5, 10, 16, 16)          # 3 LAX + 2 SAX, 10 frames
GRID = (5, 2, 2, 2)


def _official_state(rng):
  """Random tensors named and shaped as ImagingMaskedEncoder's state dict inside a Lightning checkpoint."""
  t = lambda *s: torch.tensor(rng.normal(0, 0.2, s), dtype=torch.float32)  # noqa: E731
  pos = cardiac.position_embedding_5d(3, 2, GRID[1:], D)
  s = {"patch_embed.proj.weight": t(D, 1, *PATCH), "patch_embed.proj.bias": t(D), "cls_token": t(1, 1, D),
       "enc_pos_embed": torch.tensor(np.concatenate([np.zeros((1, D)), pos])[None], dtype=torch.float32),
       "encoder_norm.weight": 1 + t(D), "encoder_norm.bias": t(D)}
  for i in range(DEPTH):
    b = f"encoder.{i}."
    s.update({b + "norm1.weight": 1 + t(D), b + "norm1.bias": t(D), b + "attn.qkv.weight": t(3 * D, D),
              b + "attn.qkv.bias": t(3 * D), b + "attn.proj.weight": t(D, D), b + "attn.proj.bias": t(D),
              b + "norm2.weight": 1 + t(D), b + "norm2.bias": t(D), b + "mlp.fc1.weight": t(4 * D, D),
              b + "mlp.fc1.bias": t(4 * D), b + "mlp.fc2.weight": t(D, 4 * D), b + "mlp.fc2.bias": t(D)})
  return {"encoder_imaging." + k: v for k, v in s.items()}


def _torch_reference(s, x):
  """The official forward without masking: Conv3d per slice, + pos, CLS (+ its zero pos row), timm blocks, norm."""
  g = lambda k: s["encoder_imaging." + k]  # noqa: E731
  b, n = x.shape[:2]
  h = torch.nn.functional.conv3d(x.reshape(b * n, 1, *x.shape[2:]), g("patch_embed.proj.weight"),
                                 g("patch_embed.proj.bias"), stride=PATCH)
  h = h.flatten(2).transpose(1, 2).reshape(b, -1, D) + g("enc_pos_embed")[:, 1:]
  h = torch.cat([(g("cls_token") + g("enc_pos_embed")[:, :1]).expand(b, -1, -1), h], 1)
  ln = lambda v, k: torch.nn.functional.layer_norm(v, (D,), g(k + ".weight"), g(k + ".bias"), eps=1e-5)  # noqa
  for i in range(DEPTH):
    p = f"encoder.{i}."
    qkv = torch.nn.functional.linear(ln(h, p + "norm1"), g(p + "attn.qkv.weight"), g(p + "attn.qkv.bias"))
    q, k, v = qkv.reshape(b, -1, 3, HEADS, D // HEADS).permute(2, 0, 3, 1, 4)
    att = torch.softmax(q @ k.transpose(-2, -1) * (D // HEADS) ** -0.5, -1)
    o = (att @ v).transpose(1, 2).reshape(b, -1, D)
    h = h + torch.nn.functional.linear(o, g(p + "attn.proj.weight"), g(p + "attn.proj.bias"))
    m = torch.nn.functional.gelu(torch.nn.functional.linear(ln(h, p + "norm2"), g(p + "mlp.fc1.weight"),
                                                            g(p + "mlp.fc1.bias")))
    h = h + torch.nn.functional.linear(m, g(p + "mlp.fc2.weight"), g(p + "mlp.fc2.bias"))
  return ln(h, "encoder_norm")


def test_official_checkpoint_loads_runs_like_the_official_encoder_and_round_trips(tmp_path):
  rng = np.random.default_rng(0)
  state = _official_state(rng)
  path = tmp_path / "vita_mae.ckpt"
  torch.save({"state_dict": state, "epoch": 3}, path)
  params = official.load_official_encoder(str(path), num_lax=3, grid=GRID, num_heads=HEADS)
  x = rng.uniform(0, 1, (2, *SHAPE)).astype(np.float32)
  enc = cardiac.CineEncoder(SHAPE, 3, PATCH, D, DEPTH, HEADS, ln_epsilon=1e-5)
  ours = np.asarray(enc.apply(params, jnp.asarray(x))[0])
  with torch.no_grad():
    ref = _torch_reference(state, torch.tensor(x)).numpy()
  np.testing.assert_allclose(ours, ref, atol=2e-4)
  back = official.encoder_to_official(params, num_lax=3, grid=GRID, patch=PATCH)
  assert set(back) == set(state)
  for k, v in state.items():
    np.testing.assert_allclose(back[k], v.numpy(), atol=1e-6, err_msg=k)


def test_bad_official_checkpoints_get_one_clear_error(tmp_path):
  state = _official_state(np.random.default_rng(1))
  missing = {k: v for k, v in state.items() if "encoder.1.attn.qkv.weight" not in k}
  torch.save({"state_dict": missing}, tmp_path / "a.ckpt")
  with pytest.raises(ValueError, match=r"a\.ckpt.*encoder_imaging\.encoder\.1\.attn\.qkv\.weight.*missing"):
    official.load_official_encoder(str(tmp_path / "a.ckpt"), num_lax=3, grid=GRID, num_heads=HEADS)
  flipped = dict(state)
  pos = state["encoder_imaging.enc_pos_embed"].clone()
  pos[0, 1:, 0] = 1 - pos[0, 1:, 0]                       # the other view polarity
  flipped["encoder_imaging.enc_pos_embed"] = pos
  torch.save(flipped, tmp_path / "b.pt")
  with pytest.raises(ValueError, match=r"b\.pt.*enc_pos_embed.*not the official"):
    official.load_official_encoder(str(tmp_path / "b.pt"), num_lax=3, grid=GRID, num_heads=HEADS)
