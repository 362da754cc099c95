"""Sliders for the book: live ipywidgets in a kernel, and precomputed frames for the static HTML.

A chapter writes one ``draw(**values) -> image`` function and gets both:

* ``live_sliders(draw, sliders)``: ipywidgets sliders that call ``draw`` and show the image (Jupyter,
  Colab; ipywidgets 7 and 8). Needs a running kernel.
* ``slider_html(precompute_frames(draw, grid), grid)``: the same images computed ahead for a few values of
  one or two parameters, with HTML range sliders and a few lines of JavaScript to flip between them. It
  is self-contained (frames are embedded as data URIs, no script or style is fetched from anywhere), so
  it works in the built book without a kernel or a network.

ipywidgets and Pillow are imported only inside the functions that need them.
Letters in shapes: H/W image, N frames.
"""

import base64
import html
import io
import itertools
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Slider:
    """One slider: the keyword of ``draw`` it sets, its range and its label.

    Attributes:
        name: keyword argument of the draw function.
        min: lowest value.
        max: highest value.
        step: resolution of the slider.
        value: starting value.
        label: text shown next to the slider (default: ``name``).
    """

    name: str
    min: float
    max: float
    step: float = 0.05
    value: float = 0.0
    label: str | None = None


def decimal_places(values: Sequence[float], most: int = 2) -> int:
    """How many decimals show every value exactly: 0 for whole numbers, else up to ``most``.

    Slider readouts use it, so that integers read as integers ("3", not "3.00") and a value that needs
    more decimals than ``most`` (such as a multiple of π) is rounded to ``most``.

    Args:
        values: the values a slider takes.
        most: the largest number of decimals.

    Returns:
        The number of decimals, from 0 to ``most``.
    """
    for places in range(most):
        if all(abs(round(float(v), places) - float(v)) <= 1e-9 * max(1.0, abs(float(v))) for v in values):
            return places
    return most


def encode_image(image: np.ndarray, fmt: str = "png", quality: int = 85) -> bytes:
    """Encode an (H, W, 3) uint8 image as PNG or JPEG bytes.

    Args:
        image: (H, W, 3) or (H, W, 4) uint8 image.
        fmt: "png" or "jpeg".
        quality: JPEG quality (1-95).

    Returns:
        The encoded bytes.
    """
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W, 3 or 4) uint8, got {image.shape} {image.dtype}")
    if fmt not in ("png", "jpeg"):
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    buffer = io.BytesIO()
    pil = Image.fromarray(image)
    if fmt == "jpeg":
        pil.convert("RGB").save(buffer, format="JPEG", quality=quality)
    else:
        pil.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


def figure_to_image(fig, dpi: float | None = None) -> np.ndarray:
    """Rasterise a matplotlib figure to an (H, W, 3) uint8 image (for frames that need axes or text).

    Args:
        fig: a matplotlib figure.
        dpi: resolution; None keeps the figure's.

    Returns:
        (H, W, 3) uint8 image.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    from PIL import Image

    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def live_sliders(
    draw: Callable[..., np.ndarray], sliders: Sequence[Slider], columns: int = 1, width: int | None = None
):
    """ipywidgets sliders that redraw ``draw(**values)`` whenever one moves.

    Works with ipywidgets 7 and 8 (only ``FloatSlider``, ``Image``, ``HBox``/``VBox`` and ``observe``).

    Args:
        draw: returns an (H, W, 3) uint8 image for keyword arguments named as the sliders.
        sliders: the sliders, in display order.
        columns: how many columns to lay the sliders out in.
        width: displayed width of the image in pixels (default: its own).

    Returns:
        The widget (an ``ipywidgets.HBox``): display it, or make it a cell's last expression.
    """
    import ipywidgets as widgets

    names = [s.name for s in sliders]
    if len(set(names)) != len(names):
        raise ValueError(f"slider names must be unique, got {names}")
    controls = {
        s.name: widgets.FloatSlider(
            value=s.value, min=s.min, max=s.max, step=s.step, description=s.label or s.name,
            continuous_update=True, readout_format=f".{decimal_places([s.min, s.max, s.step, s.value])}f",
            style={"description_width": "initial"},
            layout=widgets.Layout(width="260px"),
        )
        for s in sliders
    }
    first = draw(**{name: c.value for name, c in controls.items()})
    view = widgets.Image(value=encode_image(first), format="png")
    if width is not None:
        view.layout = widgets.Layout(width=f"{width}px")

    def redraw(_change=None):
        view.value = encode_image(draw(**{name: c.value for name, c in controls.items()}))

    for control in controls.values():
        control.observe(redraw, names="value")
    per_column = -(-len(sliders) // columns)
    boxes = [widgets.VBox([controls[n] for n in names[i : i + per_column]])
             for i in range(0, len(names), per_column)]
    return widgets.HBox([view, *boxes])


def time_redraw(draw: Callable[..., np.ndarray], values: Sequence[Mapping[str, float]], repeats: int = 1) -> np.ndarray:
    """Seconds that one redraw of ``live_sliders`` takes (draw and PNG encoding), for each set of values.

    Args:
        draw: the draw function.
        values: keyword arguments for each call.
        repeats: how many times to go through ``values``.

    Returns:
        (N,) seconds per call, N = repeats · len(values).
    """
    times = []
    for kwargs in list(values) * repeats:
        start = time.perf_counter()
        encode_image(draw(**kwargs))
        times.append(time.perf_counter() - start)
    return np.asarray(times)


def precompute_frames(draw: Callable[..., np.ndarray], grid: Mapping[str, Sequence[float]], **fixed) -> np.ndarray:
    """Draw every combination of the values in ``grid`` (the first parameter varies slowest).

    Args:
        draw: returns an (H, W, 3) uint8 image for keyword arguments.
        grid: parameter name → the values it takes (at most a few parameters: the count multiplies).
        **fixed: further keyword arguments passed to every call.

    Returns:
        (N_1, ..., N_k, H, W, 3) uint8 frames.
    """
    names = list(grid)
    frames = [draw(**fixed, **dict(zip(names, combo))) for combo in itertools.product(*grid.values())]
    shape = tuple(len(v) for v in grid.values())
    return np.stack(frames).reshape(*shape, *frames[0].shape)


def slider_html(
    frames: np.ndarray,
    grid: Mapping[str, Sequence[float]],
    labels: Mapping[str, str] | None = None,
    fmt: str = "jpeg",
    width: int | None = None,
    caption: str = "",
) -> str:
    """A self-contained HTML block that flips through precomputed frames with one range slider per parameter.

    Nothing is loaded from outside: the frames are data URIs, the script is inline and the controls are
    plain ``<input type="range">`` elements, so the page works offline and without a kernel.

    Args:
        frames: (N_1, ..., N_k, H, W, 3) uint8 frames, as ``precompute_frames`` returns.
        grid: parameter name → its N_i values, in the order of the frame axes.
        labels: parameter name → text shown next to its slider (HTML-escaped; default: the name).
        fmt: "jpeg" (smaller) or "png".
        width: displayed width of the image in pixels (default: its own).
        caption: text under the sliders.

    Returns:
        The HTML, to show with ``IPython.display.HTML``.

    Raises:
        ValueError: if the frame axes do not match the grid.
    """
    shape = tuple(len(v) for v in grid.values())
    frames = np.asarray(frames)
    if frames.shape[: len(shape)] != shape or frames.ndim != len(shape) + 3:
        raise ValueError(f"frames must have shape {shape} + (H, W, 3) for the grid, got {frames.shape}")
    labels = dict(labels or {})
    uid = "hmr" + uuid.uuid4().hex[:10]
    mime = "image/jpeg" if fmt == "jpeg" else "image/png"
    uris = [
        f"data:{mime};base64," + base64.b64encode(encode_image(f, fmt)).decode("ascii")
        for f in frames.reshape(-1, *frames.shape[len(shape):])
    ]
    start = [len(v) // 2 for v in grid.values()]
    flat_start = int(np.ravel_multi_index(start, shape))
    size = frames.shape[len(shape) + 1]
    style_width = f"width:{width}px;" if width else f"width:{size}px;"
    rows = []
    for i, (name, values) in enumerate(grid.items()):
        text = html.escape(labels.get(name, name))
        value_list = ",".join(f"{float(v):.6g}" for v in values)
        places = decimal_places(values)
        # The label, and the range with its value, wrap onto two lines rather than run out of the column.
        rows.append(
            f'<div style="display:flex;flex-wrap:wrap;align-items:center;gap:2px 8px;margin:2px 0">'
            f'<span style="min-width:7.5em">{text}</span>'
            f'<span style="display:flex;align-items:center;gap:8px;flex:1 1 170px">'
            f'<input type="range" min="0" max="{len(values) - 1}" step="1" value="{start[i]}" '
            f'data-values="{value_list}" data-places="{places}" oninput="{uid}_update()" '
            f'style="flex:1 1 auto;min-width:90px;max-width:160px">'
            f'<span style="min-width:3.5em;font-family:monospace">{float(values[start[i]]):.{places}f}</span>'
            f"</span></div>"
        )
    caption_html = f'<div style="font-size:90%;color:#555">{html.escape(caption)}</div>' if caption else ""
    strides = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
    return (
        f'<div id="{uid}" style="display:flex;flex-wrap:wrap;align-items:center;gap:16px;margin:8px 0">'
        f'<img src="{uris[flat_start]}" style="{style_width}height:auto" alt="precomputed frame">'
        f'<div style="flex:1 1 250px;min-width:250px">{"".join(rows)}{caption_html}</div></div>'
        f"<script>var {uid}_frames = {json.dumps(uris)};"
        f"function {uid}_update() {{"
        f'var box = document.getElementById("{uid}"); var inputs = box.querySelectorAll("input");'
        f"var strides = {strides}; var k = 0;"
        f"inputs.forEach(function (el, i) {{ k += strides[i] * parseInt(el.value);"
        f'var vals = el.dataset.values.split(",");'
        f"el.nextElementSibling.textContent = "
        f"parseFloat(vals[el.value]).toFixed(parseInt(el.dataset.places)); }});"
        f'box.querySelector("img").src = {uid}_frames[k]; }}</script>'
    )


def show_images(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, columns: int | None = None,
                size: float = 2.2, title_size: float = 10.0):
    """Show images side by side (or in rows of ``columns``) in one matplotlib figure without axes.

    Args:
        images: (H, W, 3) images.
        titles: one title per image.
        columns: images per row (default: all in one row).
        size: inches per image.
        title_size: font size of the titles.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    count = len(images)
    columns = columns or count
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows * 1.08), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < count:
            ax.imshow(images[i])
            if titles is not None:
                ax.set_title(titles[i], fontsize=title_size)
    fig.tight_layout()
    return fig
