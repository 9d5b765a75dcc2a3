"""Build notebooks/NN_*.ipynb from the percent-format sources in notebooks/src/NN_*.py.

Cells start with '# %%' (code), '# %% [markdown]' (markdown, lines prefixed '# ') or
'# %% tags=["parameters"]'. Outputs are empty, so the built notebooks are commit-ready.
Usage: python tools/py2nb.py            (all)   |   python tools/py2nb.py 20_ptq
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def convert(src: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    chunks = re.split(r"^# %%(.*)$", src.read_text(encoding="utf-8"), flags=re.M)
    for header, body in zip(chunks[1::2], chunks[2::2], strict=False):
        body = body.strip("\n")
        if "[markdown]" in header:
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(body)
            m = re.search(r"tags=(\[.*\])", header)
            if m:
                cell.metadata["tags"] = json.loads(m.group(1))
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:03d}"
    return nb


def main() -> None:
    wanted = sys.argv[1:]
    for src in sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py")):
        if wanted and src.stem not in wanted:
            continue
        dest = ROOT / "notebooks" / f"{src.stem}.ipynb"
        nbformat.write(convert(src), dest)
        print(f"wrote {dest.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
