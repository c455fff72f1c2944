"""Every notebook in notebooks/ runs top to bottom at a tiny size (JAXMED_NOTEBOOK_SMALL=1)."""

import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
  import nbclient
  import nbformat
  monkeypatch.setenv("JAXMED_NOTEBOOK_SMALL", "1")
  monkeypatch.setenv("JAXMED_NOTEBOOK_WORKDIR", str(tmp_path))
  monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  monkeypatch.setenv("MPLBACKEND", "Agg")
  nb = nbformat.read(path, as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert code and all(c.execution_count is not None for c in code), "some code cells did not run"
  errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
  assert not errors, errors
  assert any(o.get("output_type") in ("display_data", "execute_result") for o in code[-1].get("outputs", [])), \
      "the last cell should show the notebook's figure or result"
