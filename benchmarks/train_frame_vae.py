"""Train a small learned codec (a per-frame VAE) on the layers, and measure the floor it puts under them.

Renders synthetic training clips (seeds below 1,000,000) at the model config's clip shape, turns
each into the four sub-clip videos the model encodes (:func:`layerflow_model.conditioning.clip_to_video`:
premultiplied foreground, alpha as grey, background, blend; [-1, 1]) and trains diffusers'
``AutoencoderKL`` (:class:`layerflow_model.codec.FrameVAECodec`) on their frames: mean squared
reconstruction error plus ``--kl-weight`` times the KL term, Adam. Its ``scaling_factor`` is then
set to one over the standard deviation of its latents on the training frames, and it is saved to
``OUT`` (safetensors), where ``--set codec.kind=frame_vae --set codec.path=OUT`` (``quality_vs_steps.py``)
or a model config's ``codec`` picks it up.

At every ``--eval-every`` steps, and at the end, held-out clips (seeds >= 1,000,000) go through the
codec and back (encode, decode: what a model whose latents were perfect would return) and are
scored with the project's metrics: alpha IoU and MAD (x 1e3), background and foreground PSNR (dB).
Pixel-unshuffle returns them exactly. One JSON line per evaluation; the last line is a JSON object
with the settings, the curve and the file written.

    python benchmarks/train_frame_vae.py --steps 3000 --eval-every 500 --latent-channels 16 --out runs/frame-vae
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from data_recipes.synthetic import held_out_samples, synthetic_samples
from layerflow_model.codec import FrameVAECodec
from layerflow_model.conditioning import clip_to_video, decode_layers, encode_layers, video_to_clip
from layerflow_model.metrics import score_clip, summarize
from layerflow_model.train_config import load_model_config
from layerflow_model.video_io import atomic_output

FLOOR_METRICS = ("alpha_iou", "alpha_mad", "bg_psnr", "fg_psnr")


def build_codec(latent_channels: int, block_out_channels: tuple[int, ...], seed: int) -> FrameVAECodec:
    """A fresh per-frame VAE: ``len(block_out_channels) - 1`` halvings of each side, ``latent_channels`` out."""
    torch.manual_seed(seed)
    blocks = len(block_out_channels)
    return FrameVAECodec(
        down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=block_out_channels, layers_per_block=1, latent_channels=latent_channels,
        norm_num_groups=min(32, min(block_out_channels)), scaling_factor=1.0, mid_block_add_attention=False,
    )


def layer_frames(samples) -> torch.Tensor:
    """Samples -> every frame of their four sub-clip videos, (N * 4 * T, 3, H, W) in [-1, 1]."""
    return torch.cat([clip_to_video(s.clip).flatten(0, 1) for s in samples])


@torch.no_grad()
def reconstruction_floor(codec: FrameVAECodec, samples) -> dict[str, float]:
    """Mean alpha IoU, alpha MAD, bg PSNR and fg PSNR of the samples' layers after encode and decode."""
    scores = {}
    for sample in samples:
        video = clip_to_video(sample.clip)[None]  # (1, 4, T, 3, H, W)
        decoded = decode_layers(codec, encode_layers(codec, video))[0]
        scores[sample.key] = score_clip(video_to_clip(decoded), sample.clip)
    means = summarize(scores)["mean"]
    return {metric: round(float(means[metric]), 4) for metric in FLOOR_METRICS}


@torch.no_grad()
def latent_std(codec: FrameVAECodec, frames: torch.Tensor, batch_size: int = 256) -> float:
    """Standard deviation of the unscaled latents (posterior mode) of ``frames`` (N, 3, H, W)."""
    modes = [codec.encode(frames[i:i + batch_size]).latent_dist.mode() for i in range(0, len(frames), batch_size)]
    return float(torch.cat(modes).std())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="small", help="model preset or file whose clip shape the frames take")
    parser.add_argument("--steps", type=int, required=True, help="training steps")
    parser.add_argument("--eval-every", type=int, default=500, help="steps between reconstruction scores")
    parser.add_argument("--latent-channels", type=int, default=16, help="channels per latent pixel")
    parser.add_argument("--block-out-channels", default="32,64,64",
                        help="channels per resolution, comma-separated; n entries halve each side n - 1 times")
    parser.add_argument("--batch-size", type=int, default=64, help="frames per step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--kl-weight", type=float, default=1e-6)
    parser.add_argument("--train-clips", type=int, default=500, help="synthetic training clips (x 4 layers x T frames)")
    parser.add_argument("--eval-clips", type=int, default=32, help="held-out synthetic clips scored")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out", type=Path, required=True, help="folder the trained codec is saved to")
    args = parser.parse_args()
    if args.steps <= 0 or args.eval_every <= 0:
        parser.error("--steps and --eval-every must be positive")
    torch.set_num_threads(args.threads)

    clip = load_model_config(args.config).clip
    shape = (clip.num_frames, clip.height, clip.width)
    frames = layer_frames(synthetic_samples(args.train_clips, *shape, first_seed=0, split="train"))
    held_out = held_out_samples(args.eval_clips, *shape)
    codec = build_codec(args.latent_channels, tuple(int(c) for c in args.block_out_channels.split(",")), args.seed)
    optimizer = torch.optim.Adam(codec.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    curve, tic = [], time.perf_counter()
    for step in tqdm(range(1, args.steps + 1), desc="frame VAE", unit="step"):
        batch = frames[torch.randint(len(frames), (args.batch_size,), generator=generator)]
        posterior = codec.encode(batch).latent_dist
        reconstruction = codec.decode(posterior.sample(generator)).sample
        loss = torch.nn.functional.mse_loss(reconstruction, batch) + args.kl_weight * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.eval_every == 0 or step == args.steps:
            codec.eval()
            point = {"step": step, "loss": round(loss.item(), 6), "seconds": round(time.perf_counter() - tic, 1),
                     **reconstruction_floor(codec, held_out)}
            codec.train()
            curve.append(point)
            print(json.dumps(point), flush=True)

    codec.eval()
    codec.register_to_config(scaling_factor=1.0 / latent_std(codec, frames))
    with atomic_output(args.out) as tmp:
        codec.save_pretrained(tmp, safe_serialization=True)
    print(json.dumps({"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                      "latent_shape": [codec.latent_channels, clip.height // codec.spatial_compression,
                                       clip.width // codec.spatial_compression],
                      "scaling_factor": codec.config.scaling_factor, "curve": curve, "codec": str(args.out)}))


if __name__ == "__main__":
    main()
