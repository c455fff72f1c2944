"""The tour: run every registered experiment in sequence on one preset.

  python -m experiments.tour --preset=demo --workdir=runs/tour
  python -m experiments.tour --preset=tiny --workdir=/tmp/t --only=arc,lsi
  python -m experiments.tour --preset=demo --workdir=runs/tour --write_docs

Each experiment runs in ``<workdir>/<name>`` (so a rerun resumes each one).
``<workdir>/summary.md`` gets one table row per method with its headline
metrics and wall time. ``--write_docs`` also replaces the generated table in
``docs/results.md`` (between the ``tour:begin``/``tour:end`` markers, leaving
the hand-written discussion around it alone). A failing experiment is
reported in the table and the tour exits non-zero after running the rest.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
import traceback
from typing import Any

from absl import app, flags

import experiments
from jaxmed import core

FLAGS = flags.FLAGS
flags.DEFINE_enum("preset", "demo", ["tiny", "demo"], "Config preset for every experiment.")
flags.DEFINE_string("workdir", "runs/tour", "Parent workdir; each experiment writes to <workdir>/<name>.")
flags.DEFINE_list("only", [], "Run only these experiments (comma-separated names).")
flags.DEFINE_bool("write_docs", False, "Also write the summary table into docs/results.md.")

DOCS_RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "results.md")
BEGIN, END = "<!-- tour:begin -->", "<!-- tour:end -->"


def registered() -> dict[str, Any]:
  """``{name: package}`` for every sub-package of ``experiments`` that defines ``HEADLINE``."""
  found = {}
  for info in sorted(pkgutil.iter_modules(experiments.__path__), key=lambda m: m.name):
    if info.ispkg:
      module = importlib.import_module(f"experiments.{info.name}")
      if hasattr(module, "HEADLINE"):
        found[info.name] = module
  return found


def run_one(name: str, preset: str, workdir: str) -> dict[str, Any]:
  config = importlib.import_module(f"experiments.{name}.config").get_config(preset)
  train = importlib.import_module(f"experiments.{name}.train")
  return train.train_and_evaluate(config, os.path.join(workdir, name))


def _fmt(v: Any) -> str:
  if isinstance(v, float):
    return f"{v:.4g}"
  return "–" if v is None else str(v)


def summary_table(rows: list[dict[str, Any]], preset: str) -> str:
  lines = [f"Tour on preset `{preset}` ({core.device_kind()}, {len(rows)} methods).", "",
           "| method | status | headline metrics | wall time (s) |", "|---|---|---|---|"]
  for r in rows:
    metrics = "<br>".join(f"`{k}` = {_fmt(r['results'].get(k))}" for k in r["headline"]) or "–"
    lines.append(f"| {r['name']}: {r['title']} | {r['status']} | {metrics} | {r['wall_time_s']:.1f} |")
  if not rows:
    lines.append("| (no experiments registered yet) | – | – | – |")
  return "\n".join(lines) + "\n"


def write_docs(table: str, path: str = DOCS_RESULTS) -> None:
  """Puts ``table`` between the tour markers of ``docs/results.md``, keeping the rest."""
  text = open(path).read() if os.path.exists(path) else f"# Results\n\n{BEGIN}\n{END}\n"
  if BEGIN not in text or END not in text:
    text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
  head, rest = text.split(BEGIN, 1)
  tail = rest.split(END, 1)[1]
  with open(path, "w") as f:
    f.write(f"{head}{BEGIN}\n{table}{END}{tail}")


def tour(preset: str, workdir: str, only: list[str] = (), docs: bool = False) -> list[dict[str, Any]]:
  available = registered()
  unknown = set(only) - set(available)
  if unknown:
    raise app.UsageError(f"--only names unknown experiments {sorted(unknown)}; registered: {sorted(available)}")
  os.makedirs(workdir, exist_ok=True)
  rows = []
  for name, module in available.items():
    if only and name not in only:
      continue
    print(f"\n=== {name}: {module.TITLE} [{preset}] ===", flush=True)
    t0 = time.time()
    row = {"name": name, "title": module.TITLE, "headline": list(module.HEADLINE), "results": {}}
    try:
      row["results"] = dict(run_one(name, preset, workdir))
      row["status"] = "ok"
      missing = [k for k in module.HEADLINE if k not in row["results"]]
      if missing:
        row["status"] = f"missing keys {missing}"
    except Exception:  # keep touring; the table and the exit code report it
      traceback.print_exc()
      row["status"] = "FAILED"
    row["wall_time_s"] = time.time() - t0
    rows.append(row)
  table = summary_table(rows, preset)
  with open(os.path.join(workdir, "summary.md"), "w") as f:
    f.write("# jaxmed tour\n\n" + table)
  if docs:
    write_docs(table)
  print("\n" + table)
  return rows


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  rows = tour(FLAGS.preset, FLAGS.workdir, FLAGS.only, FLAGS.write_docs)
  if any(r["status"] != "ok" for r in rows):
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
