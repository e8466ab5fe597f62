"""benchmarks/compare_curves.py: committed benchmark curves of two designs on one figure and in one table."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "compare_curves.py"
DESIGN = ROOT / "benchmarks" / "results" / "design"


def compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_two_runs_compare_in_one_plot_and_one_table(tmp_path):
    out = tmp_path / "compare.png"
    done = compare(f"chosen={DESIGN / 'k2000-ema'}", f"obvious={DESIGN / 'k2000-obvious' / 'curve.json'}",
                   "--out", str(out), "--steps", "500", "2000", "3000")
    assert done.returncode == 0, done.stderr[-2000:]
    header, rule, *rows = done.stdout.strip().splitlines()
    # the averaged weights of the run kept with --ema-decay are a line of their own
    assert header == ("| steps | chosen: alpha_iou | chosen: bg_psnr | chosen average: alpha_iou | "
                      "chosen average: bg_psnr | obvious: alpha_iou | obvious: bg_psnr |")
    assert rule.count("---") == 7
    assert rows[0] == "| 500 | 0.456 | 20.92 | 0.397 | 20.79 | 0.071 | 13.19 |"  # benchmarks/MODEL_DESIGN.md's runs
    assert rows[1] == "| 2,000 | 0.700 | 24.72 | 0.709 | 24.79 | 0.344 | 22.85 |"
    assert rows[2] == "| 3,000 | - | - | - | - | - | - |"  # neither run went that far
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [path.name for path in tmp_path.iterdir()] == ["compare.png"]  # nothing half-written left beside it


def test_runs_scored_on_different_clips_are_refused(tmp_path):
    done = compare(f"on-8-clips={DESIGN / 'chosen-1000'}", f"on-16-clips={DESIGN / 'k2000-chosen'}",
                   "--out", str(tmp_path / "compare.png"))
    assert done.returncode == 2 and "different held-out clips" in done.stderr
    assert not (tmp_path / "compare.png").exists()


def test_runs_scored_on_different_clips_compare_each_against_its_own_baselines(tmp_path):
    out = tmp_path / "compare.png"
    done = compare(f"on-8-clips={DESIGN / 'chosen-1000'}", f"on-16-clips={DESIGN / 'k2000-chosen'}",
                   "--out", str(out), "--steps", "1000", "--different-clips")
    assert done.returncode == 0, done.stderr[-2000:]
    steps_table, baselines_table = done.stdout.strip().split("\n\n")
    assert steps_table.splitlines()[0] == ("| steps | on-8-clips: alpha_iou | on-8-clips: bg_psnr | "
                                           "on-16-clips: alpha_iou | on-16-clips: bg_psnr |")
    header, rule, *rows = baselines_table.splitlines()
    assert header == "| run | baseline | alpha_iou | bg_psnr |"
    # each run's median and classical decompositions of its own clips; the ground truth has neither metric
    assert [row.split(" | ")[:2] for row in rows] == [["| on-8-clips", "median"], ["| on-8-clips", "classical"],
                                                      ["| on-16-clips", "median"], ["| on-16-clips", "classical"]]
    assert rows[3] == "| on-16-clips | classical | 0.483 | 25.96 |"  # k2000-chosen's curve.json
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_without_a_label_or_a_curve_is_named_in_the_error(tmp_path):
    done = compare(str(DESIGN / "k2000-chosen"), "--out", str(tmp_path / "compare.png"))
    assert done.returncode == 2 and "expected LABEL=PATH" in done.stderr
    done = compare(f"missing={tmp_path}", "--out", str(tmp_path / "compare.png"))
    assert done.returncode == 2 and f"no curve.json at {tmp_path / 'curve.json'}" in done.stderr
