"""The book, checked as a reader would see it: build it, then look at every chapter page in Chromium.

The build runs ``jupyter-book build --all`` (executing every chapter) into a temporary folder; set
``HMR_BOOK_HTML`` to an already built ``_build/html`` to check that instead. Set
``HMR_BOOK_SCREENSHOTS`` to a folder to keep the screenshots for a person to look at.
"""

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hmr_core.web_viewer import find_chromium

REPO = Path(__file__).resolve().parents[1]
# page -> how many figures (matplotlib images and precomputed slider frames) it must show at least
PAGES = {"chapters/intro": 1, "chapters/01_smpl": 10, "chapters/02_projection": 9, "chapters/03_ief": 4,
         "chapters/04_adversarial_prior": 4, "chapters/05_data": 5, "chapters/06_training": 1,
         "chapters/07_evaluation": 2, "chapters/08_demo": 8}
# page -> how many precomputed sliders it must have at least
SLIDER_PAGES = {"chapters/01_smpl": 4, "chapters/02_projection": 4, "chapters/03_ief": 2, "chapters/08_demo": 1}
BUILD_TIMEOUT_S = 1200


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it",
)


def chromium(*args: str, profile: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Headless Chromium, offline, with a fresh profile."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=15000", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory) -> Path:
    """The built book: ``$HMR_BOOK_HTML`` if set, else a fresh build of the whole book."""
    if os.environ.get("HMR_BOOK_HTML"):
        path = Path(os.environ["HMR_BOOK_HTML"])
        assert (path / "index.html").is_file(), f"$HMR_BOOK_HTML={path} holds no built book (no index.html)"
        return path
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book",
               "build", "--all", str(REPO), "--path-output", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=REPO)
    log = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"jupyter-book build failed (exit {result.returncode}):\n{log}"
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory) -> Path:
    if os.environ.get("HMR_BOOK_SCREENSHOTS"):
        path = Path(os.environ["HMR_BOOK_SCREENSHOTS"])
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


def read_page(html_dir: Path, page: str) -> str:
    path = html_dir / f"{page}.html"
    assert path.is_file(), f"the book has no page {path}"
    return path.read_text(encoding="utf-8")


def output_blocks(html: str) -> list[str]:
    """The HTML of every cell output of a page."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    return [str(div) for div in soup.select("div.cell_output")]


@pytest.mark.parametrize("page", PAGES)
def test_no_error_in_the_page(html_dir, page):
    html = read_page(html_dir, page)
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    errors = soup.select(".output.error, .output.traceback, div.traceback")
    assert not errors, f"{page}: cell error output: {errors[0].get_text()[:500]}"
    for block in output_blocks(html):
        text = BeautifulSoup(block, "html.parser").get_text()
        # A raised exception prints a traceback or ends with an unindented "SomeError: ..." line; a chapter
        # that shows an error message on purpose (the demo's refused images) indents it.
        raised = re.search(r"(?m)^\w*(Error|Exception)\b", text)
        assert "Traceback" not in text and not raised, f"{page}: an output shows an error:\n{text[:800]}"
    for stderr in soup.select(".output.stderr"):
        text = stderr.get_text()
        assert "Warning" not in text and "Error" not in text, f"{page}: stderr in the page:\n{text[:800]}"
    # widgets need a kernel: their text fallback must not appear in the static page
    assert not re.search(r"(HBox|VBox|FloatSlider)\(children=", html), f"{page}: a widget shows as raw text"


@pytest.mark.parametrize("page", PAGES)
def test_figures_are_present(html_dir, page):
    html = read_page(html_dir, page)
    sources = re.findall(r'<img[^>]*\ssrc="([^"]+)"', html)
    figures = [s for s in sources if s.startswith("data:image/") or "_images/" in s]
    assert len(figures) >= PAGES[page], f"{page}: {len(figures)} figures, expected at least {PAGES[page]}"
    for src in figures:
        if src.startswith("data:image/"):
            assert len(base64.b64decode(src.split(",", 1)[1])) > 500, f"{page}: an embedded image is empty"
        else:
            path = (html_dir / page).parent / src
            assert path.is_file() and path.stat().st_size > 500, f"{page}: figure {src} is missing or empty"


@pytest.mark.parametrize("page", PAGES)
def test_nothing_is_fetched_from_the_network(html_dir, page):
    html = read_page(html_dir, page)
    # <script src>, <link href> and <img src> pointing outside the book would need a network
    external = re.findall(r'<(?:script|img|link)[^>]*\s(?:src|href)="(https?:)?//[^"]*"', html)
    stylesheets = re.findall(r'<link[^>]*href="(https?://[^"]*)"', html)
    scripts = re.findall(r'<script[^>]*src="(https?://[^"]*)"', html)
    assert not (scripts or stylesheets or external), f"{page} loads {scripts + stylesheets}"
    if page != "chapters/intro":
        assert (html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is not served by the book"


def test_colab_launch_buttons(html_dir):
    # The buttons point at the repository that _config.yml names, as the chapters' install cells do.
    import yaml

    repository = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))["repository"]
    github = repository["url"].rstrip("/").removeprefix("https://github.com/")
    for page in SLIDER_PAGES:
        html = read_page(html_dir, page)
        url = f"https://colab.research.google.com/github/{github}/blob/{repository['branch']}/{page}.ipynb"
        assert url in html, f"{page}: no Colab launch button to {url}"


FOOTER_ROWS = 80  # the theme pins its footer to the bottom of the window


def content_rows(image: np.ndarray) -> int:
    """Height of the page's content in a screenshot: the last row with ink right of the side bar."""
    ink = (image[:-FOOTER_ROWS, 320:] < 235).any(axis=(1, 2))
    rows = np.nonzero(ink)[0]
    return int(rows.max()) + 1 if len(rows) else 0


@pytest.mark.parametrize("page", PAGES)
def test_screenshot(html_dir, screenshot_dir, page, tmp_path):
    from PIL import Image

    name = page.replace("/", "_")
    path = screenshot_dir / f"{name}.png"
    height = 4000 if page == "chapters/intro" else 40000
    result = chromium(f"--screenshot={path}", f"--window-size=1280,{height}",
                      (html_dir / f"{page}.html").as_uri(), profile=tmp_path / "profile")
    assert path.is_file(), f"Chromium wrote no screenshot of {page}:\n{result.stderr[-2000:]}"
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.std() > 10, f"{page}: the screenshot is blank"
    rows = content_rows(image)
    assert rows > 1000, f"{page}: the screenshot shows almost nothing ({rows} rows of content)"
    assert rows < height - 2 * FOOTER_ROWS, f"{page}: the page is taller than the {height}-pixel screenshot"
    # Several tiles a person can look at, each 1280 × 2000 pixels.
    for i, top in enumerate(range(0, rows, 2000)):
        Image.fromarray(image[top : min(top + 2000, rows)]).save(screenshot_dir / f"{name}_{i:02d}.png")


@pytest.mark.parametrize("page", PAGES)
def test_equations_are_typeset(html_dir, page, tmp_path):
    html = read_page(html_dir, page)
    if "\\(" not in html and "\\[" not in html and 'class="math' not in html:
        pytest.skip(f"{page} has no equations")
    result = chromium("--dump-dom", (html_dir / f"{page}.html").as_uri(), profile=tmp_path / "profile")
    assert "mjx-container" in result.stdout, f"{page}: MathJax did not typeset the equations offline"


@pytest.mark.parametrize("page", SLIDER_PAGES)
def test_precomputed_sliders_change_the_frame(html_dir, page, tmp_path):
    """Move every offline slider of a page in Chromium and check that its image changes."""
    html = read_page(html_dir, page)
    probe = """<script>
    window.addEventListener("load", function () {
      var report = [];
      document.querySelectorAll("input[type=range][data-values]").forEach(function (input) {
        var img = input.closest("div[id]").querySelector("img");
        var before = img.src;
        input.value = input.max;
        input.dispatchEvent(new Event("input"));
        report.push(img.src !== before ? "moved" : "stuck");
      });
      document.body.setAttribute("data-slider-report", report.join(","));
    });
    </script>"""
    test_page = html_dir / f"{page}.slider-probe.html"  # beside the page, so relative links still work
    test_page.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    try:
        result = chromium("--dump-dom", test_page.as_uri(), profile=tmp_path / "profile")
    finally:
        test_page.unlink()
    match = re.search(r'data-slider-report="([^"]*)"', result.stdout)
    assert match, f"{page}: the probe did not run:\n{result.stderr[-2000:]}"
    report = match.group(1).split(",")
    assert len(report) >= SLIDER_PAGES[page] and set(report) == {"moved"}, f"{page}: sliders {report}"


# Runs in the page once it has loaded and MathJax has typeset: every element of the article that is wider
# than the text column, or whose content is wider than its own box (so that it scrolls or is cut off),
# is reported with where it is. MathJax's internals are skipped (their boxes overflow by design), and so
# is its assistive MathML, which is hidden from sight.
WIDTH_PROBE = """<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var hide = document.createElement("style");
    hide.textContent = "mjx-assistive-mml { display: none !important; }";
    document.head.appendChild(hide);
    var article = document.querySelector("article.bd-article");
    var box = article.getBoundingClientRect(), style = getComputedStyle(article);
    var left = box.left + parseFloat(style.paddingLeft), right = box.right - parseFloat(style.paddingRight);
    var report = [], reported = [];
    function where(el) {
      var section = el.closest("section[id]");
      var text = el.innerText || el.textContent || el.getAttribute("alt") || "";
      text = text.replace(/\\s+/g, " ").trim().slice(0, 70);
      return el.tagName.toLowerCase() + " in #" + (section ? section.id : "?") + ": " + text;
    }
    article.querySelectorAll("*").forEach(function (el) {
      if (el.tagName.indexOf("MJX-") === 0 && el.tagName !== "MJX-CONTAINER") return;
      var r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) return;
      if (reported.some(function (outer) { return outer.contains(el); })) return;
      var css = getComputedStyle(el);
      if (css.visibility === "hidden") return;
      var out = Math.max(r.right - right, left - r.left);
      var hidden = el.scrollWidth - el.clientWidth;
      if (out > 1) {
        reported.push(el);
        report.push(Math.round(out) + " px beyond the column: " + where(el));
      } else if (css.overflowX !== "visible" && hidden > 1) {
        reported.push(el);
        report.push(hidden + " px scrolled or cut off: " + where(el));
      }
    });
    document.body.setAttribute("data-width-report",
      JSON.stringify({column: right - left, overflows: report}));
  }, 3000);
});
</script>"""


def measure_widths(html_dir: Path, page: str, profile: Path) -> dict:
    """What WIDTH_PROBE reports for a page in a 1280-pixel-wide Chromium window."""
    import html as html_module
    import json

    test_page = html_dir / f"{page}.width-probe.html"  # beside the page, so relative links still work
    probed = read_page(html_dir, page).replace("</body>", WIDTH_PROBE + "</body>")
    test_page.write_text(probed, encoding="utf-8")
    try:
        result = chromium("--dump-dom", "--window-size=1280,2000", test_page.as_uri(), profile=profile)
    finally:
        test_page.unlink()
    match = re.search(r'data-width-report="([^"]*)"', result.stdout)
    assert match, f"{page}: the width probe did not run:\n{result.stderr[-2000:]}"
    return json.loads(html_module.unescape(match.group(1)))


@pytest.mark.parametrize("page", PAGES)
def test_nothing_is_wider_than_the_column(html_dir, page, tmp_path):
    """Code, tables, figures, sliders and printed output fit the text column without a scrollbar."""
    report = measure_widths(html_dir, page, tmp_path / "profile")
    assert report["column"] > 500, f"{page}: the text column is only {report['column']:.0f} px wide"
    assert not report["overflows"], (
        f"{page}: {len(report['overflows'])} elements do not fit the {report['column']:.0f}-px text column:\n"
        + "\n".join(report["overflows"])
    )


def test_the_width_probe_sees_what_does_not_fit(html_dir, tmp_path):
    """The probe reports a code line, a table and a block that are too wide, and nothing else."""
    page = "chapters/intro"
    html = read_page(html_dir, page)
    wide = ('<section id="too-wide"><pre>' + "x = 1  # " + "y" * 150 + "</pre>"
            '<table><tr><td>' + "z" * 200 + "</td></tr></table>"
            '<div style="width:2000px">a wide widget</div></section>')
    fixture = html_dir / "chapters" / "width-fixture.html"
    fixture.write_text(html.replace('<section id="', wide + '<section id="', 1), encoding="utf-8")
    try:
        report = measure_widths(html_dir, "chapters/width-fixture", tmp_path / "profile")
    finally:
        fixture.unlink()
    overflows = report["overflows"]
    assert len(overflows) == 3 and all("#too-wide" in line for line in overflows), overflows
