"""benchmarks/windowed_decompose.py: held-out clips longer than the model's, decomposed in windows and scored."""

import json
import math
import subprocess
import sys
from pathlib import Path

from layerflow_model import build_pipeline, get_config

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "windowed_decompose.py"


def test_windowed_decomposition_is_scored_for_each_overlap_against_the_first_window(tmp_path):
    build_pipeline(get_config("tiny"), seed=0).save_pretrained(tmp_path / "tiny")  # 4 frames of 16x16
    command = [sys.executable, str(BENCHMARK), "--model", str(tmp_path / "tiny"), "--count", "2", "--frames", "6",
               "--overlaps", "0", "2", "--threads", "1", "--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "out" / "windowed.json").read_text())
    assert (record["count"], record["frames"], record["window"]) == (2, 6, 4)
    assert [row["setting"] for row in record["rows"]] == ["first window only", "overlap 0", "overlap 2"]
    for row in record["rows"]:
        assert 0 <= row["alpha_iou"] <= 1 and math.isfinite(row["bg_psnr"]) and row["seconds_per_clip"] > 0
    assert "| overlap 2 |" in (tmp_path / "out" / "windowed.md").read_text()
