"""Tests for ``python -m hmr_core.bench redraw``: it runs and reports one row per backend and size (the
numbers themselves are benchmarks, recorded in docs/benchmarks.md, never asserted)."""

import pytest

from hmr_core import bench, bench_redraw


def test_redraw_reports_every_size_of_an_available_backend(capsys):
    rows = bench_redraw.bench_redraw(sizes=(64, 48), backends=("numpy",), redraws=2, repeats=1)
    assert [(backend, size) for backend, size, _, _ in rows] == [("numpy", 64), ("numpy", 48)]
    assert all(0 < median <= worst for _, _, median, worst in rows)
    out = capsys.readouterr().out
    assert "slider redraw" in out and "baseline: the numpy backend" in out


def test_redraw_skips_a_backend_that_cannot_start(capsys, monkeypatch):
    from hmr_core import render

    available = render.available_backend

    def no_opengl(backend=None):
        if backend == "pyrender":
            raise RuntimeError("no OpenGL here")
        return available(backend)

    monkeypatch.setattr(render, "available_backend", no_opengl)
    rows = bench_redraw.bench_redraw(sizes=(32,), backends=("pyrender", "numpy"), redraws=1, repeats=1)
    assert [backend for backend, *_ in rows] == ["numpy"]
    assert "pyrender unavailable: no OpenGL here" in capsys.readouterr().out


def test_redraw_refuses_an_unknown_backend():
    with pytest.raises(ValueError, match="render backend must be one of"):
        bench_redraw.bench_redraw(sizes=(32,), backends=("no-such-backend",), redraws=1, repeats=1)


def test_redraw_subcommand_parses(monkeypatch):
    seen = {}
    monkeypatch.setattr(bench_redraw, "bench_redraw", lambda *args: seen.setdefault("args", args))
    bench.main(["redraw", "--sizes", "32", "--backends", "numpy", "--redraws", "1", "--repeats", "1"])
    assert seen["args"] == ([32], ["numpy"], 1, 1)
