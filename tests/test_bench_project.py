"""benchmarks/bench_project.py runs end to end on the bundled demo generator (tiny settings) and
reports every figure for both target sets."""
import numpy as np
import pytest
from PIL import Image

from benchmarks import bench_project

pytestmark = pytest.mark.slow


def test_benchmark_reports_recovery_agreement_and_time(capsys, tmp_path):
    grid = str(tmp_path / "grid.png")
    record = bench_project.benchmark(None, num=2, steps=3, w_avg_samples=64, spaces=("w", "w+"),
                                     grid=grid)
    assert [(r["targets"], r["space"]) for r in record["rows"]] == [
        ("generated", "w"), ("real", "w"), ("generated", "w+"), ("real", "w+")]
    rows = {r["targets"]: r for r in record["rows"][:2]}
    assert record["num"] == 2
    for row in rows.values():
        assert row["distance"] == "pixel"  # the bundled .npz has no discriminator
        assert np.isfinite([row["psnr_mean"], row["swd"], row["swd_other_images"],
                            row["seconds_per_image"]]).all()
    assert 0 <= rows["real"]["attributes_all_agree"] <= 1
    assert set(rows["real"]["attribute_agreement"]) == {"hair_color", "eye_color", "mouth_open", "hairband"}
    assert rows["generated"]["w_error_relative"] > 0
    # The grid: generated targets, their W and W+ reconstructions, then the same for the real.
    assert Image.open(grid).size == (2 * 32, 6 * 64)
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("targets") and '"benchmark": "project"' in out
