"""A small learned codec: a per-frame VAE trained by benchmarks/train_frame_vae.py, picked by codec.kind=frame_vae."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from layerflow_model import LayerFlowPipeline, LayerPrompts, build_pipeline, get_config
from layerflow_model.codec import FrameVAECodec
from layerflow_model.config import with_overrides

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def trained_codec(tmp_path_factory):
    """A codec trained for 4 steps at the tiny config's 16x16 (2x smaller each side, 4 channels), and its JSON lines."""
    out = tmp_path_factory.mktemp("codec") / "frame-vae"
    command = [sys.executable, str(BENCHMARKS / "train_frame_vae.py"), "--config", "tiny", "--steps", "4",
               "--eval-every", "2", "--train-clips", "4", "--eval-clips", "2", "--block-out-channels", "8,16",
               "--latent-channels", "4", "--threads", "1", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, [json.loads(line) for line in done.stdout.splitlines()]


def test_the_benchmark_trains_the_codec_scores_its_floor_and_saves_it(trained_codec):
    out, lines = trained_codec
    *points, summary = lines
    assert [p["step"] for p in points] == [p["step"] for p in summary["curve"]] == [2, 4]
    for point in points:
        assert 0 <= point["alpha_iou"] <= 1 and point["alpha_mad"] >= 0
        assert math.isfinite(point["bg_psnr"]) and math.isfinite(point["fg_psnr"])
    assert summary["latent_shape"] == [4, 8, 8] and summary["scaling_factor"] > 0
    assert (out / "diffusion_pytorch_model.safetensors").is_file()


def test_a_model_with_the_codec_saves_and_loads_it_and_samples(trained_codec, tmp_path):
    out, _ = trained_codec
    pipe = build_pipeline(with_overrides(get_config("tiny"), {"codec.kind": "frame_vae", "codec.path": str(out)}))
    video = torch.rand(1, 4, 3, 16, 16) * 2 - 1  # (B, F, 3, H, W) in [-1, 1]
    latents = pipe.vae.encode_video(video)
    assert latents.shape == (1, 4, 4, 8, 8) and pipe.vae.decode_latents(latents).shape == video.shape

    pipe.save_pretrained(tmp_path / "model")
    loaded = LayerFlowPipeline.from_pretrained(tmp_path / "model")

    assert isinstance(loaded.vae, FrameVAECodec)
    torch.testing.assert_close(loaded.vae.encode_video(video), latents)
    prompts = LayerPrompts(fg="a red circle", bg="blue stripes", blend="a red circle over blue stripes")
    assert loaded(prompts, num_inference_steps=1).clips[0].alpha.shape == (4, 16, 16)


def test_the_codec_path_is_checked_by_field_name(tmp_path):
    with pytest.raises(ValidationError, match="path: a frame_vae codec loads from a local folder"):
        get_config("tiny", codec={"kind": "frame_vae"})
    with pytest.raises(ValidationError, match="path: a frame_vae codec loads from a local folder"):
        get_config("tiny", codec={"kind": "pixel_unshuffle", "path": str(tmp_path)})
    with pytest.raises(ValidationError, match="holds no config.json"):
        get_config("tiny", codec={"kind": "frame_vae", "path": str(tmp_path)})


def test_the_clip_must_fit_the_codecs_factor(trained_codec):
    out, _ = trained_codec  # 2x smaller each side; the tiny transformer's patches are 2 latent pixels wide
    with pytest.raises(ValidationError, match="clip.width=18 must be a multiple of the frame_vae codec's factor"):
        get_config("tiny", codec={"kind": "frame_vae", "path": str(out)},
                   clip={"num_frames": 4, "height": 16, "width": 18})
