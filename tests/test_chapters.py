"""The chapter files, read without running them: every chapter installs ``hmr_core`` from the address
that ``_config.yml`` gives the book (``python .ci/book_url.py`` writes it), in a hidden cell right after
the chapter's title.
"""

import json
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "chapters").glob("*.ipynb"))


@pytest.fixture(scope="module")
def requirement() -> str:
    """What every install cell must hand to pip: ``hmr_core @ git+<repository.url>@<repository.branch>``."""
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    url, branch = config["repository"]["url"].rstrip("/"), config["repository"].get("branch", "main")
    return f"hmr_core @ git+{url}@{branch}"


def test_every_chapter_in_the_toc_is_checked():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    pages = {entry["file"] for entry in toc["chapters"]}
    assert pages == {f"chapters/{path.stem}" for path in CHAPTERS}
    assert len(CHAPTERS) == 8


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_install_cell_follows_the_title_and_uses_the_book_address(path, requirement):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    title, install = cells[0], cells[1]
    assert title["cell_type"] == "markdown" and "".join(title["source"]).startswith("# "), (
        f"{path.name}: the first cell must be the chapter's title"
    )
    source = "".join(install["source"])
    assert install["cell_type"] == "code" and "google.colab" in source, (
        f"{path.name}: the second cell must be the Colab install cell"
    )
    assert "hide-cell" in install["metadata"].get("tags", []), f"{path.name}: the install cell is not hidden"
    assert re.findall(r"git\+[^\s\"']+", source) == [f"git+{requirement.split('git+', 1)[1]}"], (
        f"{path.name}: the install cell does not install {requirement!r}; run python .ci/book_url.py"
    )
    assert f'"{requirement}"' in source
    others = [i for i, cell in enumerate(cells) if i != 1 and "git+" in "".join(cell["source"])]
    assert not others, f"{path.name}: cells {others} name a git address too"
