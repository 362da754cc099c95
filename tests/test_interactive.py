"""Tests for hmr_core.interactive: the offline HTML slider and the ipywidgets sliders."""

import re

import numpy as np
import pytest

from hmr_core import interactive


def draw(a=0.0, b=0.0):
    """A 16 × 16 image whose colour encodes the arguments."""
    image = np.zeros((16, 16, 3), np.uint8)
    image[..., 0] = int(100 + 50 * a)
    image[..., 1] = int(100 + 50 * b)
    return image


def test_precompute_frames_orders_the_grid():
    frames = interactive.precompute_frames(draw, {"a": [-1.0, 0.0, 1.0], "b": [0.0, 1.0]})
    assert frames.shape == (3, 2, 16, 16, 3)
    assert frames[2, 0, 0, 0, 0] == 150 and frames[0, 1, 0, 0, 1] == 150


def test_slider_html_is_self_contained():
    grid = {"a": [-1.0, 0.0, 1.0], "b": [0.0, 1.0]}
    page = interactive.slider_html(interactive.precompute_frames(draw, grid), grid, labels={"a": "β<sub>1</sub>"},
                                   fmt="png", caption="caption & more")
    assert "http" not in page and "//" not in page.replace("://", "")  # nothing fetched from anywhere
    assert page.count('type="range"') == 2
    assert len(re.findall(r"data:image/png;base64,", page)) == 3 * 2 + 1  # the frames, and the first one shown
    assert "β&lt;sub&gt;1&lt;/sub&gt;" in page and "caption &amp; more" in page


def test_decimal_places_reads_integers_as_integers():
    assert interactive.decimal_places([-90, 0, 45.0, 180]) == 0
    assert interactive.decimal_places([0.5, 1.0, 1.5]) == 1
    assert interactive.decimal_places([0.25, 0.5]) == 2
    assert interactive.decimal_places(np.linspace(-np.pi, np.pi, 5)) == 2  # rounded to the most
    assert interactive.decimal_places([0.125], most=3) == 3


def test_slider_html_shows_integers_as_integers():
    grid = {"a": [-1.0, 0.0, 1.0], "b": [0.0, 0.5]}
    page = interactive.slider_html(interactive.precompute_frames(draw, grid), grid)
    readouts = re.findall(r'font-family:monospace">([^<]*)</span>', page)
    assert readouts == ["0", "0.5"]  # the middle value of each grid, as many decimals as its values need
    assert re.findall(r'data-places="(\d)"', page) == ["0", "1"]
    assert "toFixed(parseInt(el.dataset.places))" in page  # the script keeps that format when a slider moves


def test_slider_html_rejects_mismatched_frames():
    with pytest.raises(ValueError, match=r"frames must have shape \(3,\) \+ \(H, W, 3\)"):
        interactive.slider_html(np.zeros((2, 4, 4, 3), np.uint8), {"a": [0, 1, 2]})


def test_encode_image_checks_its_input():
    assert interactive.encode_image(draw()).startswith(b"\x89PNG")
    assert interactive.encode_image(draw(), "jpeg").startswith(b"\xff\xd8")
    with pytest.raises(ValueError, match=r"image must be \(H, W, 3 or 4\) uint8, got \(4, 4\) float64"):
        interactive.encode_image(np.zeros((4, 4)))


def test_live_sliders_redraw_on_change():
    pytest.importorskip("ipywidgets")
    sliders = [interactive.Slider("a", -1.0, 1.0), interactive.Slider("b", -1.0, 1.0, label="b value")]
    box = interactive.live_sliders(draw, sliders, columns=2)
    image, *columns = box.children
    before = image.value
    columns[0].children[0].value = 1.0
    assert image.value != before
    assert [c.children[0].description for c in columns] == ["a", "b value"]
    assert [c.children[0].readout_format for c in columns] == [".2f", ".2f"]
    whole = interactive.live_sliders(draw, [interactive.Slider("a", 0, 7, 1, label="image")])
    assert whole.children[1].children[0].readout_format == ".0f"
    with pytest.raises(ValueError, match="slider names must be unique"):
        interactive.live_sliders(draw, sliders + sliders[:1])


def test_time_redraw_returns_one_time_per_call():
    times = interactive.time_redraw(draw, [{"a": 0.0}, {"a": 1.0}], repeats=3)
    assert times.shape == (6,) and (times > 0).all()
