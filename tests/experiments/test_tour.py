"""The tour runs whatever is registered and writes its summary."""

import os
import subprocess
import sys

from experiments import tour

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_registered_experiment_has_config_and_train():
  for name, module in tour.registered().items():
    assert isinstance(module.TITLE, str) and len(module.HEADLINE) > 0, name
    for part in ("config", "train", "__main__"):
      assert os.path.exists(os.path.join(ROOT, "experiments", name, f"{part}.py")), (name, part)


def test_summary_table_and_docs_markers(tmp_path):
  rows = [{"name": "x", "title": "X method", "headline": ["a/b"], "results": {"a/b": 0.123456},
           "status": "ok", "wall_time_s": 1.5}]
  table = tour.summary_table(rows, "tiny")
  assert "| x: X method | ok | `a/b` = 0.1235 | 1.5 |" in table
  doc = tmp_path / "results.md"
  doc.write_text(f"# Results\n\nintro\n\n{tour.BEGIN}\nold\n{tour.END}\n\n## Discussion\nkept\n")
  tour.write_docs(table, str(doc))
  text = doc.read_text()
  assert "intro" in text and "kept" in text and "old" not in text and "0.1235" in text


def test_tour_tiny_runs_and_writes_summary(tmp_path):
  """The tour's CLI, per-experiment workdir and summary, on one experiment.

  Every experiment's tiny preset already runs end to end in its own test (tests/experiments/test_<name>.py),
  so the tour is not rerun on all of them here: that doubled the suite's longest tests.
  """
  only = ["arc"]  # the cheapest tiny preset; --only's list parsing is checked by the unknown-name test below
  out = subprocess.run([sys.executable, "-m", "experiments.tour", "--preset=tiny", f"--workdir={tmp_path}",
                        f"--only={','.join(only)}"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
  assert out.returncode == 0, out.stderr[-3000:]
  summary = (tmp_path / "summary.md").read_text()
  assert "| method | status |" in summary and "1 methods" in summary
  for name in only:
    assert f"| {name}:" in summary and "| ok |" in summary
    assert os.path.exists(tmp_path / name / "results.json")


def test_every_registered_experiment_has_its_own_tiny_test():
  for name in tour.registered():
    assert os.path.exists(os.path.join(ROOT, "tests", "experiments", f"test_{name}.py")), name


def test_write_docs_keeps_other_rows_and_writes_experiment_tables(tmp_path):
  doc = tmp_path / "results.md"
  old = tour.summary_table([{"name": n, "title": n.upper(), "headline": ["m"], "results": {"m": v},
                             "status": "ok", "wall_time_s": 2.0} for n, v in (("a", 1.0), ("b", 2.0))], "demo")
  doc.write_text(f"# Results\n\n{tour.BEGIN}\n{old}{tour.END}\n\n## B\n<!-- tour:b:begin -->\nstale\n"
                 "<!-- tour:b:end -->\nprose kept\n")
  new = tour.summary_table([{"name": "b", "title": "B", "headline": ["m"], "results": {"m": 3.0},
                             "status": "ok", "wall_time_s": 5.0}], "demo")
  tour.write_docs(new, str(doc), details={"b": "| new b table |\n", "c": "| c table |\n"}, names=["a", "b", "c"])
  text = doc.read_text()
  assert "| a: A | ok | `m` = 1 | 2.0 |" in text  # not rerun: kept
  assert "| b: B | ok | `m` = 3 | 5.0 |" in text and "`m` = 2 " not in text  # rerun: replaced
  assert "2 methods)" in text
  assert "stale" not in text and "| new b table |" in text and "prose kept" in text
  assert "<!-- tour:c:begin -->\n| c table |\n<!-- tour:c:end -->" in text  # appended with its markers


def test_ssfl_results_table_has_every_metric_r_and_method():
  from experiments import ssfl_recon
  metrics = ("psnr", "ssim", "nmse", "psnr_official")
  results = {f"{m}/R{r}/{n}": 1.0 for m in metrics for r in (4, 16) for n in ssfl_recon.METHODS}
  results.update({f"psnr_sd/R{r}/{n}": 0.25 for r in (4, 16) for n in ssfl_recon.METHODS})
  results.update({"protocol/unseen_fraction_max": 0.0, "paired_gain/R8/ssfl_vs_nofeat": 0.5,
                  "paired_gain_ci/R8/ssfl_vs_nofeat": [0.25, 0.75]})
  table = ssfl_recon.results_table(results)
  assert table.count("| PSNR | ") == 2 and table.count("| PSNR (official) | ") == 2
  # classical methods have no seed (no sd); the trained networks show mean ± sd
  assert "| PSNR | 16 | 1.00 | 1.00 | 1.00 ± 0.25 | 1.00 ± 0.25 | 1.00 ± 0.25 | 1.00 ± 0.25 | 1.00 ± 0.25 |" in table
  assert "| R8/ssfl_vs_nofeat | +0.50 | [+0.25, +0.75] |" in table
  assert "prospective" not in table  # no acq_test_r/ keys, no second setting


def test_only_names_unknown_experiments_before_running_any(tmp_path):
  import pytest
  from absl import app
  with pytest.raises(app.UsageError, match=r"unknown experiments \['nope'\]"):
    tour.tour("tiny", str(tmp_path), only=["arc", "nope"])
  assert not os.path.exists(tmp_path / "arc")
