"""The chapter files, read without running them: every chapter installs ``hmr_core`` from the address
that ``_config.yml`` gives the book (``python .ci/book_url.py`` writes it), in a hidden cell right after
the chapter's title; ends with exercises whose ``hmr_core`` names exist; points to ``docs/`` only through
links into the repository, which the rendered book can follow; and times nothing in its asserts (speed
lives in ``python -m hmr_core.bench``).
"""

import importlib
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


def markdown_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == "markdown"]


def resolves(dotted: str) -> bool:
    """Whether ``hmr_core.module.attr...`` names a module, or an attribute reachable from one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_ends_with_exercises_that_name_real_functions(path):
    last = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][-1]["source"])
    assert last.startswith("## Exercises"), f"{path.name}: the last cell must be the exercises"
    items = re.findall(r"^\d+\. ", last, flags=re.MULTILINE)
    assert 3 <= len(items) <= 6, f"{path.name}: {len(items)} exercises, expected 3 to 6"
    names = set(re.findall(r"`(hmr_core(?:\.\w+)+)", last))
    assert names, f"{path.name}: no exercise names a function of hmr_core to check against"
    missing = sorted(name for name in names if not resolves(name))
    assert not missing, f"{path.name}: the exercises name {missing}, which hmr_core does not have"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_pointers_to_docs_are_links_into_the_repository(path):
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    blob = f"{config['repository']['url'].rstrip('/')}/blob/{config['repository'].get('branch', 'main')}/"
    for text in markdown_cells(path):
        for match in re.finditer(r"docs/[\w/.-]+\.md", text):
            before, after = text[:match.start()], text[match.end():]
            linked = before.endswith(blob) or (before.endswith("[`") and after.startswith("`](" + blob))
            assert linked, f"{path.name}: {match.group()} is not a link to {blob}{match.group()}"
            assert (REPO / match.group()).is_file(), f"{path.name}: {match.group()} does not exist"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_chapters_assert_no_timings(path):
    code = ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == "code"]
    timed = [line.strip() for cell in code for line in cell.splitlines()
             if line.lstrip().startswith("assert") and re.search(r"\b(times?|seconds|elapsed|ms)\b", line)]
    assert not timed, f"{path.name}: timing asserts belong in python -m hmr_core.bench: {timed}"


# Code a reader sees in the book fits its text column: code cells, code blocks in Markdown cells, and the
# package source that ``{literalinclude}`` shows (the package itself uses about 110 columns).
CODE_COLUMNS = 80


def literalinclude_lines(chapter: Path, block: str) -> tuple[str, list[str]]:
    """The lines one ``{literalinclude}`` block shows: a ``:pyobject:`` (with its decorators) or the file."""
    import ast

    target, *options = block.strip().split("\n")
    path = (chapter.parent / target.strip()).resolve()
    assert path.is_file(), f"{chapter.name}: literalinclude of a missing file {target.strip()}"
    lines = path.read_text(encoding="utf-8").split("\n")
    opts = dict(re.findall(r"^:([\w-]+):\s*(.*)$", "\n".join(options), flags=re.M))
    name = f"{path.name}:{opts.get('pyobject', '')}"
    if "pyobject" not in opts:
        return name, lines
    body = ast.parse("\n".join(lines)).body
    node = None
    for part in opts["pyobject"].split("."):
        node = next((n for n in body if getattr(n, "name", None) == part), None)
        assert node is not None, f"{chapter.name}: {path.name} has no {opts['pyobject']}"
        body = node.body
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return name, lines[start - 1 : node.end_lineno]


def fenced_blocks(markdown: str) -> list[tuple[str, list[str]]]:
    """(info string, lines) of every fenced block of a Markdown cell, the fence's backticks matched."""
    blocks, fence, info, lines = [], None, "", []
    for line in markdown.split("\n"):
        stripped = line.strip()
        if fence is None:
            match = re.match(r"^(`{3,})(.*)$", stripped)
            if match:
                fence, info, lines = match.group(1), match.group(2).strip(), []
        elif stripped == fence:
            blocks.append((info, lines))
            fence = None
        else:
            lines.append(line)
    return blocks


def shown_code(chapter: Path) -> list[tuple[str, list[str]]]:
    """(where, lines) for every piece of code a chapter shows."""
    shown = []
    for i, cell in enumerate(json.loads(chapter.read_text(encoding="utf-8"))["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            shown.append((f"cell {i}", source.split("\n")))
            continue
        for info, lines in fenced_blocks(source):
            if info.startswith("{literalinclude}"):
                target = info.removeprefix("{literalinclude}")
                shown.append(literalinclude_lines(chapter, "\n".join([target, *lines])))
            elif not info.startswith("{"):  # a directive's body is prose, not code
                shown.append((f"cell {i}, code block", lines))
    return shown


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_shown_code_fits_80_columns(path):
    long = [f"{where}: {len(line)} columns: {line.strip()[:60]}"
            for where, lines in shown_code(path) for line in lines if len(line) > CODE_COLUMNS]
    assert not long, (f"{path.name}: {len(long)} lines of code wider than {CODE_COLUMNS} columns:\n"
                      + "\n".join(long))


def test_the_column_check_sees_long_lines(tmp_path):
    # A chapter with one long line in each kind of code the check reads must fail it.
    (tmp_path / "mod.py").write_text("def f():\n    return '" + "x" * 90 + "'\n\n\ndef g():\n    return 1\n")
    markdown = ("```{literalinclude} mod.py\n:pyobject: f\n```\n\n"
                "```{literalinclude} mod.py\n:pyobject: g\n```\n\n"
                "```bash\necho " + "y" * 90 + "\n```\n")
    cells = [{"cell_type": "markdown", "metadata": {}, "source": [markdown]},
             {"cell_type": "code", "metadata": {}, "source": ["z = 1  # " + "z" * 90]}]
    chapter = tmp_path / "chapter.ipynb"
    chapter.write_text(json.dumps({"cells": cells}))
    long = {where for where, lines in shown_code(chapter) for line in lines if len(line) > CODE_COLUMNS}
    assert long == {"mod.py:f", "cell 0, code block", "cell 1"}
