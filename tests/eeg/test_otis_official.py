"""Released OTiS weights: an independent torch re-implementation of the official forward (oetu/otis
``models_otis.forward_encoder`` without masking, ``util/patch_embed.py``, ``util/transformer.Attention``, the
preprocessing of ``util/preprocess.py``) with random weights, saved with ``torch.save``, loaded without torch."""

import numpy as np
import pytest

from jaxmed.eeg.otis_official import load_official_otis

D, DEPTH, HEADS, V, Q, TMAX = 32, 2, 4, 5, 16, 12


def _preprocess(x, k=3.0):
  """util/preprocess.py defaults: sample-wise statistics ignoring points beyond 3 SD, then clamp +-3."""
  axes = (-2, -1)
  m0, s0 = x.mean(axes, keepdims=True), x.std(axes, keepdims=True)
  keep = np.abs((x - m0) / (s0 + 1e-9)) <= k
  mean = (x * keep).sum(axes, keepdims=True) / (keep.sum(axes, keepdims=True) + 1e-9)
  std = np.sqrt((((x - mean) ** 2) * keep).sum(axes, keepdims=True) / (keep.sum(axes, keepdims=True) + 1e-9))
  return np.clip((x - mean) / (std + 1e-9), -k, k)


def _sincos(dim, n):
  """MAE's get_1d_sincos_pos_embed with a zero class row."""
  omega = 1.0 / 10000 ** (np.arange(dim // 2) / (dim / 2.0))
  out = np.arange(n)[:, None] * omega[None]
  return np.concatenate([np.zeros((1, dim)), np.concatenate([np.sin(out), np.cos(out)], 1)])


def _reference(torch):
  nn = torch.nn

  class Attention(nn.Module):
    def __init__(self):
      super().__init__()
      self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
      self.mha = nn.MultiheadAttention(D, HEADS, batch_first=True)

    def forward(self, x):
      q, k, v = self.qkv(x).reshape(x.shape[0], x.shape[1], 3, D).permute(2, 0, 1, 3).unbind(0)
      return self.proj(self.mha(q, k, v)[0])

  class Block(nn.Module):
    def __init__(self):
      super().__init__()
      self.norm1, self.norm2 = nn.LayerNorm(D, eps=1e-6), nn.LayerNorm(D, eps=1e-6)
      self.attn = Attention()
      self.mlp = nn.Module()
      self.mlp.fc1, self.mlp.fc2 = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x):
      x = x + self.attn(self.norm1(x))
      return x + self.mlp.fc2(nn.functional.gelu(self.mlp.fc1(self.norm2(x))))

  class OTiS(nn.Module):
    def __init__(self):
      super().__init__()
      self.patch_embed = nn.Module()
      self.patch_embed.proj = nn.Conv2d(1, D, (1, Q), (1, Q))
      self.patch_embed.norm = nn.LayerNorm(D)
      self.pos_embed_x = nn.Parameter(torch.tensor(_sincos(D // 2, TMAX), dtype=torch.float32)[None],
                                      requires_grad=False)
      self.pos_embed_y = nn.Embedding(V + 1, D // 2, padding_idx=0)
      self.cls_token = nn.Parameter(0.02 * torch.randn(1, 1, D))
      self.blocks = nn.ModuleList([Block() for _ in range(DEPTH)])
      self.norm = nn.LayerNorm(D, eps=1e-6)

    def forward(self, x, ids):                       # x [B, 1, C, T], ids [B, C, T']
      x = nn.functional.gelu(self.patch_embed.norm(self.patch_embed.proj(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
      pos_x = nn.functional.pad(self.pos_embed_x, (D // 2, 0))
      x = x + pos_x.permute(0, 2, 1).unsqueeze(-2)[..., 1:x.shape[-1] + 1]
      x = x + nn.functional.pad(self.pos_embed_y(ids), (0, D // 2)).permute(0, 3, 1, 2)
      x = x.flatten(2).transpose(1, 2)
      x = torch.cat([(self.cls_token + pos_x[:, :1]).expand(x.shape[0], -1, -1), x], 1)
      for blk in self.blocks:
        x = blk(x)
      return self.norm(x)

  return OTiS()


def test_official_otis_checkpoint_parity(tmp_path):
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  ref = _reference(torch).eval()
  path = str(tmp_path / "otis_base.pth")
  torch.save({"model": ref.state_dict(), "domain_offsets": {"eeg": 0}}, path)
  encoder, variables = load_official_otis(path, heads=HEADS)
  assert (encoder.dim, encoder.depth, encoder.patch, encoder.num_variates, encoder.max_patches) == (D, DEPTH, Q, V, TMAX)
  x = (40e-6 * np.random.default_rng(0).standard_normal((2, 4, 160))).astype(np.float32)
  x[0, 1, 30] = 1e-3                                  # an outlier the robust statistics ignore
  ids = torch.arange(1, 5)[None, :, None].expand(2, 4, 10)
  with torch.no_grad():
    want = ref(torch.from_numpy(_preprocess(x.astype(np.float64)).astype(np.float32))[:, None], ids).numpy()
  tokens = np.asarray(encoder.apply(variables, x))
  np.testing.assert_allclose(tokens.reshape(2, 40, D), want[:, 1:], atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(encoder.apply(variables, x, features=True)), want[:, 0], atol=1e-4)


def test_a_broken_checkpoint_names_the_tensor(tmp_path):
  torch = pytest.importorskip("torch")
  state = _reference(torch).state_dict()
  del state["blocks.1.attn.mha.in_proj_bias"]
  torch.save({"model": state}, str(tmp_path / "broken.pth"))
  with pytest.raises(KeyError, match=r"broken.pth: OTiS tensor 'blocks.1.attn.mha.in_proj_bias' is missing"):
    load_official_otis(str(tmp_path / "broken.pth"), heads=HEADS)
  state = _reference(torch).state_dict()
  state["pos_embed_x"] = state["pos_embed_x"] + 1.0
  torch.save(state, str(tmp_path / "shifted.pth"))
  with pytest.raises(ValueError, match="not the 1-D sin-cos table"):
    load_official_otis(str(tmp_path / "shifted.pth"), heads=HEADS)
