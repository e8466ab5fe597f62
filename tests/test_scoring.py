"""`layerflow score`: two folders in the official layout -> mean and per-sequence scores."""

import json
import math

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from flows.cli_eval import score
from layerflow_model import LayeredClip
from layerflow_model.layerflow_folder import write_layerflow_sequence
from layerflow_model.metrics import METRIC_NAMES
from layerflow_model.scoring import comparison_rows, hardest_sequences, plot_metric, report_markdown, score_folders

app = typer.Typer(callback=lambda: None)  # a command group, as flows/cli.py's app
app.command("score")(score)
runner = CliRunner(env={"COLUMNS": "300"})


def layered_clip(seed: int, frames: int = 3, size: int = 24) -> LayeredClip:
    """A textured background under a soft-edged square; values on the 8-bit grid, as PNGs store them."""
    rng = np.random.default_rng(seed)
    bg = np.round(rng.random((frames, size, size, 3)) * 255) / 255
    alpha = np.zeros((frames, size, size), dtype=np.float32)
    alpha[:, 6:16, 8:18] = 1.0
    alpha[:, 5, 8:18] = 128 / 255
    fg = np.broadcast_to(np.array([230, 30, 25]) / 255, bg.shape)
    return LayeredClip(fg=fg, alpha=alpha, bg=bg).with_blend()


@pytest.fixture
def gt_folder(tmp_path):
    for seed, name in enumerate(("alpha-seq", "beta-seq")):
        write_layerflow_sequence(tmp_path / "gt" / name, layered_clip(seed))
    return tmp_path / "gt"


def run_score(pred, gt, out, *extra):
    return runner.invoke(app, ["score", "--pred", str(pred), "--gt", str(gt), "--out", str(out), *extra])


def test_a_folder_scored_against_itself_is_perfect(gt_folder, tmp_path):
    result = run_score(gt_folder, gt_folder, tmp_path / "scores.json")
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "scores.json").read_text())  # strict JSON: inf is the string "inf"
    assert set(scores) == {"mean", "per_sequence"} and set(scores["per_sequence"]) == {"alpha-seq", "beta-seq"}
    for values in [scores["mean"], *scores["per_sequence"].values()]:
        assert list(values) == list(METRIC_NAMES)
        for name in ("alpha_mad", "alpha_mse", "alpha_grad", "alpha_conn", "alpha_dtssd"):
            assert values[name] == 0.0
        assert values["alpha_iou"] == values["fg_ssim"] == values["bg_ssim"] == 1.0
        for name in ("fg_psnr", "bg_psnr", "bg_hidden_psnr", "blend_psnr"):
            assert values[name] == "inf"
        assert values["composite_mae"] < 1 / 255  # the blend is the 8-bit composite of the layers


def test_mean_and_per_sequence_values_by_hand(gt_folder, tmp_path):
    clip = layered_clip(1)
    alpha = clip.alpha.copy()
    alpha[:, 6:16, 8:18] = 0.0  # beta-seq's prediction misses the square entirely: 100 pixels per frame
    write_layerflow_sequence(tmp_path / "pred" / "alpha-seq", layered_clip(0))
    write_layerflow_sequence(tmp_path / "pred" / "beta-seq", LayeredClip(fg=clip.fg, alpha=alpha, bg=clip.bg,
                                                                        blend=clip.blend))
    scores = score_folders(tmp_path / "pred", gt_folder)
    # alpha MAD of beta-seq: 100 of 24 x 24 pixels wrong by 1 -> 100 / 576 x 1e3 = 173.6
    assert scores["per_sequence"]["beta-seq"]["alpha_mad"] == pytest.approx(100 / 576 * 1e3)
    # IoU at alpha > 0.5: only the soft top row (10 pixels at 128/255) is left of the 110 -> 1/11
    assert scores["per_sequence"]["beta-seq"]["alpha_iou"] == pytest.approx(1 / 11)
    assert scores["mean"]["alpha_mad"] == pytest.approx(100 / 576 * 1e3 / 2)  # alpha-seq is perfect: 0
    assert scores["mean"]["alpha_iou"] == pytest.approx((1 + 1 / 11) / 2)
    assert scores["mean"]["bg_psnr"] == math.inf  # both backgrounds exact: every defined value is inf


def test_fg_conventions_are_read_as_the_folder_stores_them(gt_folder, tmp_path):
    for seed, name in enumerate(("alpha-seq", "beta-seq")):
        write_layerflow_sequence(tmp_path / "straight" / name, layered_clip(seed), fg_matte=None)
    # Read as stored, the foreground matches up to the 8-bit rounding of the ground truth's grey matte.
    assert score_folders(tmp_path / "straight", gt_folder, pred_fg_matte=None)["mean"]["fg_psnr"] > 60
    assert score_folders(tmp_path / "straight", gt_folder)["mean"]["fg_psnr"] < 50  # read as over grey: soft edge off
    result = run_score(tmp_path / "straight", gt_folder, tmp_path / "s.json", "--pred-fg", "straight")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s.json").read_text())["mean"]["fg_psnr"] > 60


def test_missing_sequences_frames_and_size_mismatches_are_clear_errors(gt_folder, tmp_path):
    write_layerflow_sequence(tmp_path / "one" / "alpha-seq", layered_clip(0))
    result = run_score(tmp_path / "one", gt_folder, tmp_path / "x.json")
    assert result.exit_code != 0 and "missing from the prediction ['beta-seq']" in result.output

    for name in ("alpha-seq", "beta-seq"):
        write_layerflow_sequence(tmp_path / "short" / name, layered_clip(0, frames=2))
    result = run_score(tmp_path / "short", gt_folder, tmp_path / "x.json")
    assert result.exit_code != 0 and "the prediction has 2 frames and the ground truth 3" in result.output
    assert "missing from the prediction: ['0002']" in result.output

    for name in ("alpha-seq", "beta-seq"):
        write_layerflow_sequence(tmp_path / "small" / name, layered_clip(0, size=16))
    result = run_score(tmp_path / "small", gt_folder, tmp_path / "x.json")
    assert result.exit_code != 0 and "prediction frames are 16x16 (HxW), ground truth 24x24" in result.output
    assert not (tmp_path / "x.json").exists()


def test_comparison_table_plots_and_markdown(tmp_path):
    perfect = {"mean": {m: 1.0 for m in METRIC_NAMES}}
    undefined = {"mean": {m: math.nan for m in METRIC_NAMES} | {"bg_psnr": math.inf}}
    rows = comparison_rows({"model": perfect, "median": undefined}, {"model": {"oracle_colour": 0.75}})
    assert [row["method"] for row in rows] == ["model", "median"]
    assert rows[0]["oracle_colour"] == 0.75 and math.isnan(rows[1]["oracle_colour"])
    png = plot_metric(tmp_path / "bg_psnr.png", "bg_psnr", rows)  # inf and NaN get labels, not bars
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = report_markdown("Eval", rows, {"bg_psnr": "file:///x/bg_psnr.png"}, notes=["2 clips"])
    assert "| model | 1 |" in markdown and "- 2 clips" in markdown and "![bg_psnr](file:///x/bg_psnr.png)" in markdown


def test_hardest_clips_are_the_worst_scoring_first_whichever_way_a_metric_improves():
    per_sequence = {"easy": {"alpha_iou": 0.95, "alpha_mad": 4.0, "bg_psnr": math.inf},
                    "empty-truth": {"alpha_iou": 0.0, "alpha_mad": 30.0, "bg_psnr": math.inf},
                    "edgy": {"alpha_iou": 0.80, "alpha_mad": math.nan, "bg_psnr": 83.0}}
    assert hardest_sequences(per_sequence, "alpha_iou", 2) == [("empty-truth", 0.0), ("edgy", 0.80)]
    assert hardest_sequences(per_sequence, "alpha_mad", 5) == [("empty-truth", 30.0), ("easy", 4.0)]  # NaN left out
    assert hardest_sequences(per_sequence, "bg_psnr", 3) == []  # one finite value, the rest perfect: none stands out
    with pytest.raises(ValueError, match="metric must be one of"):
        hardest_sequences(per_sequence, "alpha_ioU", 1)

    rows = [{"method": "decompose", "metric": "alpha_iou", "sequence": "empty-truth", "value": 0.0,
             "prompt": "a translucent small purple triangle", "preview": "file:///r/previews/hardest/decompose/e.png"}]
    markdown = report_markdown("Eval", comparison_rows({"decompose": {"mean": {m: 1.0 for m in METRIC_NAMES}}}), {},
                               hardest=rows)
    assert "## Hardest clips" in markdown
    assert ("| decompose | alpha_iou | empty-truth | 0 | a translucent small purple triangle | "
            "[preview](file:///r/previews/hardest/decompose/e.png) |") in markdown
