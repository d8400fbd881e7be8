"""benchmarks/bench_project.py runs end to end on the bundled demo generator (tiny settings) and
reports every figure for both target sets."""
import numpy as np
import pytest

from benchmarks import bench_project

pytestmark = pytest.mark.slow


def test_benchmark_reports_recovery_agreement_and_time(capsys):
    record = bench_project.benchmark(None, num=2, steps=3, w_avg_samples=64)
    rows = {r["targets"]: r for r in record["rows"]}
    assert set(rows) == {"generated", "real"} and record["num"] == 2
    for row in rows.values():
        assert row["distance"] == "pixel"  # the bundled .npz has no discriminator
        assert np.isfinite([row["psnr_mean"], row["swd"], row["swd_other_images"],
                            row["seconds_per_image"]]).all()
    assert 0 <= rows["real"]["attributes_all_agree"] <= 1
    assert set(rows["real"]["attribute_agreement"]) == {"hair_color", "eye_color", "mouth_open", "hairband"}
    assert rows["generated"]["w_error_relative"] > 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("targets") and '"benchmark": "project"' in out
