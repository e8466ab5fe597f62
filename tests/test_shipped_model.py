"""The shipped small model serves every task out of the box; `ship-model` makes a model the shipped one."""

import json

import numpy as np
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from data_recipes.synthetic import held_out_samples
from flows.cli import app
from layerflow_model import LayerFlowPipeline, LayerPrompts
from layerflow_model.layerflow_folder import read_layerflow_sequence
from layerflow_model.shipped import TRANSFORMER_WEIGHTS, ship_model, shipped_model_dir
from layerflow_model.video_io import write_png_sequence, write_rgba_webm

runner = CliRunner(env={"COLUMNS": "300"})


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_ship_model_stores_float16_weights_that_load_as_float32(tmp_path):
    invoke("new-model", "--config", "tiny", "--out", tmp_path / "new")
    LayerFlowPipeline.from_pretrained(tmp_path / "new").save_pretrained(tmp_path / "trained")  # as a stage exports it
    assert tmp_path.name in (tmp_path / "trained" / "model_index.json").read_text()  # diffusers records where it came from
    shipped = ship_model(tmp_path / "trained", tmp_path / "pretrained" / "small")

    assert {t.dtype for t in load_file(shipped / TRANSFORMER_WEIGHTS).values()} == {torch.float16}
    assert sorted(p.name for p in (tmp_path / "pretrained").iterdir()) == ["small"]  # no staging folder left
    assert not [p for p in shipped.rglob("*.json") if tmp_path.name in p.read_text()]  # no training-machine paths
    original, copy = (LayerFlowPipeline.from_pretrained(p) for p in (tmp_path / "trained", shipped))
    assert copy.transformer.dtype == torch.float32
    prompt = LayerPrompts(fg="a red disc", bg="blue stripes", blend="a red disc over blue stripes")
    a, b = (pipe(prompt, generator=torch.Generator().manual_seed(0), output_type="latent").latents for pipe in (original, copy))
    torch.testing.assert_close(a, b, atol=2e-2, rtol=0)  # float16 rounding of the weights only


def test_the_shipped_model_serves_every_task_without_a_model_option(tmp_path):
    shape = LayerFlowPipeline.load_config(shipped_model_dir())
    clip = held_out_samples(1, shape["num_frames"], shape["height"], shape["width"])[0].clip
    write_png_sequence(tmp_path / "blend", clip.blend)
    write_png_sequence(tmp_path / "background", clip.bg)
    write_rgba_webm(tmp_path / "foreground.webm", clip.fg, clip.alpha, fps=8)

    invoke("decompose", tmp_path / "blend", "--out", tmp_path / "decompose")
    invoke("fill-background", "--foreground", tmp_path / "foreground.webm", "--out", tmp_path / "fill-background")
    invoke("fill-foreground", "--background", tmp_path / "background", "--out", tmp_path / "fill-foreground")
    invoke("generate", "--out", tmp_path / "generate", "--fg-prompt", "a red disc moving right",
           "--bg-prompt", "blue stripes", "--blend-prompt", "a red disc moving right over blue stripes")

    for task in ("decompose", "fill-background", "fill-foreground", "generate"):
        out = tmp_path / task
        assert read_layerflow_sequence(out).present_layers() == ("fg", "alpha", "bg", "blend")
        for name in ("foreground.webm", "foreground.mov", "background.mp4", "blend.mp4", "preview.png"):
            assert (out / name).stat().st_size > 0
        record = json.loads((out / "layers.json").read_text())
        assert record["task"] == task.replace("-", "_") and record["model"] == str(shipped_model_dir())
        assert record["steps"] == shape["num_inference_steps"]  # the model's own step count, as sampled
        assert record["guidance"] == 1.0  # the small model samples every task without guidance
    decomposed = read_layerflow_sequence(tmp_path / "decompose")
    np.testing.assert_allclose(decomposed.blend, clip.blend, atol=1 / 255)  # the input comes back as the blend
