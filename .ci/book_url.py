"""Write the book's address from _config.yml into every chapter's install cell.

The repository (``repository.url``) and branch (``repository.branch``) in ``_config.yml`` are the one place
the book's address is set: Jupyter Book builds the launch buttons from them, and this script stamps them
into the first code cell of every chapter, the one that installs ``hmr_core`` on Colab
(``hmr_core @ git+<url>@<branch>``). It also keeps that cell where it belongs: right after the chapter's
title, hidden.

    python .ci/book_url.py           # rewrite the chapters (only those that change)
    python .ci/book_url.py --check   # exit 1, listing the chapters that are out of date
"""

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INSTALL_REQUIREMENT = re.compile(r"hmr_core @ git\+[^\s\"']+")
HIDE_TAG = "hide-cell"


def book_address(config_path: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """(repository URL, branch) from _config.yml."""
    repository = yaml.safe_load(config_path.read_text(encoding="utf-8")).get("repository") or {}
    url = str(repository.get("url", "")).rstrip("/")
    if not url.startswith("https://"):
        raise ValueError(f"{config_path}: repository.url must be an https:// address, got {url!r}")
    return url, str(repository.get("branch") or "main")


def install_requirement(url: str, branch: str) -> str:
    """What the install cell hands to pip."""
    return f"hmr_core @ git+{url}@{branch}"


def is_install_cell(cell: dict) -> bool:
    return cell["cell_type"] == "code" and bool(INSTALL_REQUIREMENT.search("".join(cell["source"])))


def stamp(notebook: dict, requirement: str, name: str) -> dict:
    """The notebook with its install cell right after the title, hidden, installing ``requirement``."""
    cells = notebook["cells"]
    installs = [i for i, cell in enumerate(cells) if is_install_cell(cell)]
    if len(installs) != 1:
        raise ValueError(f"{name}: expected one install cell (hmr_core @ git+...), found {len(installs)}")
    cell = cells.pop(installs[0])
    titles = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("# ")]
    if not titles or titles[0] != 0:
        raise ValueError(f"{name}: the first cell besides the install cell must be the title ('# ...')")
    cell["source"] = [INSTALL_REQUIREMENT.sub(requirement, line) for line in cell["source"]]
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if HIDE_TAG not in tags:
        tags.append(HIDE_TAG)
    cells.insert(1, cell)
    return notebook


def dump(notebook: dict) -> str:
    """The notebook as Jupyter writes it (one-space indent, UTF-8, final newline)."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a chapter is out of date")
    args = parser.parse_args(argv)
    requirement = install_requirement(*book_address())
    stale = []
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        new = dump(stamp(json.loads(text), requirement, path.name))
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    verb = "out of date" if args.check else "rewritten"
    for path in stale:
        print(f"{path}: {verb}")
    print(f"install cells: {requirement}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
