"""The tour: run every registered experiment in sequence on one preset.

  python -m experiments.tour --preset=demo --workdir=runs/tour
  python -m experiments.tour --preset=tiny --workdir=/tmp/t --only=arc,lsi
  python -m experiments.tour --preset=demo --workdir=runs/tour --write_docs

Each experiment runs in ``<workdir>/<name>`` (so a rerun resumes each one).
``<workdir>/summary.md`` gets one table row per method with its headline
metrics and wall time. ``--write_docs`` also replaces the generated table in
``docs/results.md`` (between the ``tour:begin``/``tour:end`` markers, leaving
the hand-written discussion around it alone); with ``--only`` the rows of the
experiments not run are kept. An experiment whose package defines
``results_table(results) -> str`` (markdown) also gets that full table written
between its own ``tour:<name>:begin``/``tour:<name>:end`` markers (appended as
a new section when the markers are missing). A failing experiment is reported
in the table and the tour exits non-zero after running the rest.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
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


def _markers(name: str | None) -> tuple[str, str]:
  return (BEGIN, END) if name is None else (f"<!-- tour:{name}:begin -->", f"<!-- tour:{name}:end -->")


def _replace_block(text: str, block: str, name: str | None = None, heading: str = "") -> str:
  """``text`` with ``block`` between ``name``'s markers (appended with ``heading`` when they are missing)."""
  begin, end = _markers(name)
  if begin not in text or end not in text:
    text = text.rstrip() + f"\n\n{heading}{begin}\n{end}\n"
  head, rest = text.split(begin, 1)
  return f"{head}{begin}\n{block}{end}{rest.split(end, 1)[1]}"


def _merge_rows(table: str, old_block: str, names: list[str]) -> str:
  """``table`` plus the rows of ``old_block`` for registered experiments that ``table`` lacks, in ``names`` order."""
  def rows_of(block):
    return {n: line for line in block.splitlines() for n in names if line.startswith(f"| {n}:")}
  new, old = rows_of(table), rows_of(old_block)
  merged = [new.get(n) or old.get(n) for n in names if n in new or n in old]
  lines = [line for line in table.splitlines() if not any(line.startswith(f"| {n}:") for n in names)]
  lines[0] = re.sub(r", \d+ methods\)", f", {len(merged)} methods)", lines[0])
  return "\n".join(lines[:4] + merged + [line for line in lines[4:] if not line.startswith("| (no ")]) + "\n"


def write_docs(table: str, path: str = DOCS_RESULTS, details: dict[str, str] | None = None,
               names: list[str] | None = None) -> None:
  """Puts ``table`` between the tour markers of ``docs/results.md``, keeping the rest.

  ``details``: ``{experiment: markdown}`` written between that experiment's own markers. ``names``: the
  registered experiments; their rows already in the docs table survive when ``table`` lacks them.
  """
  text = "# Results\n"
  if os.path.exists(path):
    with open(path) as f:
      text = f.read()
  if names and BEGIN in text and END in text:
    table = _merge_rows(table, text.split(BEGIN, 1)[1].split(END, 1)[0], names)
  text = _replace_block(text, table)
  for name, block in (details or {}).items():
    text = _replace_block(text, block, name, heading=f"## {name} (generated by the tour)\n\n")
  with open(path, "w") as f:
    f.write(text)


def _details(module: Any, row: dict[str, Any], preset: str) -> str:
  return (f"Written by the tour (preset `{preset}`, {core.device_kind()}, wall time {row['wall_time_s']:.0f} s).\n\n"
          + module.results_table(row["results"]))


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
    details = {r["name"]: _details(available[r["name"]], r, preset) for r in rows
               if r["status"] == "ok" and hasattr(available[r["name"]], "results_table")}
    write_docs(table, details=details, names=list(available))
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
