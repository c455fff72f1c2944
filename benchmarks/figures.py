"""``--json PATH`` for the benchmarks: figures named ``a/b`` are written nested, ``{"a": {"b": value}}``
(DESIGN.md, Evidence). A name may not be both a figure and the parent of another figure."""

from __future__ import annotations

import json


def nested(figures: dict) -> dict:
  out: dict = {}
  for name, value in sorted(figures.items()):
    *parents, leaf = name.split("/")
    node = out
    for p in parents:
      node = node.setdefault(p, {})
      if not isinstance(node, dict):
        raise ValueError(f"figure {name!r}: {p!r} is already a figure, not a group")
    if leaf in node:
      raise ValueError(f"figure {name!r} is also the group of other figures")
    node[leaf] = value
  return out


def write_figures(path: str, figures: dict) -> None:
  """Writes ``figures`` (flat ``{"a/b": value}``) to ``path`` as nested JSON; no-op for an empty path."""
  if path:
    with open(path, "w") as f:
      json.dump(nested(figures), f, indent=2, sort_keys=True)
      f.write("\n")
