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
  out = subprocess.run([sys.executable, "-m", "experiments.tour", "--preset=tiny", f"--workdir={tmp_path}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1200)
  assert out.returncode == 0, out.stderr[-3000:]
  summary = (tmp_path / "summary.md").read_text()
  assert "| method | status |" in summary
  for name in tour.registered():
    assert f"| {name}:" in summary
    assert os.path.exists(tmp_path / name / "results.json")
