"""examples/quickstart.ipynb runs top to bottom in a fresh kernel, as a user would run it, and its
objects render: the board and the comparison as HTML tables holding the runs it submitted."""

from __future__ import annotations

from html import unescape
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_runs_from_a_fresh_kernel(home, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel inherits HARNESS_HOME from the home fixture: a private, empty home
    nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = {
        i: cell.get("outputs", [])
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    }
    errors = [o for cell in outputs.values() for o in cell if o.get("output_type") == "error"]
    assert not errors, errors
    html = [
        o["data"]["text/html"]
        for cell in outputs.values()
        for o in cell
        if "text/html" in o.get("data", {})
    ]
    board = next(h for h in html if h.startswith("<iframe") and "RecentPopular" in h)
    page = unescape(board)  # the HTML export, embedded whole
    assert "<table>" in page and "<svg" in page and "±" in page  # CIs and the chart render
    assert any("delta" in h and "p_value" in h for h in html), "the comparison did not render"
