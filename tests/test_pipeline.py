"""The library entry points behind `run`, `tune` and `sweep` return result objects (the commands only print them)."""

from __future__ import annotations

from ternkit.sim.sweep import sweep


def test_sweep_returns_points_front_and_csv_rows(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  array.columns: [32, 64]\n  array.fan_in: [4, 3]\n")
    result = sweep("tiny", grid, jobs=1)
    assert result.keys == ["array.columns", "array.fan_in"]
    assert len(result.results) == 4
    assert len(result.failed) == 2 and all("fan_in" in p.error for p in result.failed)   # 64 inputs: not a power of 3
    assert result.front and all(p in result.results and not p.error for p in result.front)
    rows = result.table()
    assert [r["pareto"] for r in rows] == [p in result.front for p in result.results]
    assert {r["array.fan_in"] for r in rows if r["error"]} == {3}
