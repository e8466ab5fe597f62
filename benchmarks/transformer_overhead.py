"""Training-step cost of the layer-aware transformer against the plain diffusers one.

Both models have the same shape and see the same number of tokens: the layer-aware one gets
four sub-clips on the frame axis and three prompts (B, 3, L, D); the plain
``CogVideoXTransformer3DModel`` gets the same frames and the same 3L text tokens as one
flat prompt. Where the layer-aware one takes the given sub-clips as channels too (``small``), it
gets nothing given and the plain one the same channels, built by the same function. One step is
forward + backward of an MSE loss. The last line printed is a JSON
object with the medians and ``ratio`` (layer-aware / plain); the overhead target is <= 5%.

    python benchmarks/transformer_overhead.py --config small --repeats 20
    python benchmarks/transformer_overhead.py --config my_model.yaml --set transformer.num_layers=6
    python benchmarks/transformer_overhead.py --config cogvideox-2b --device cuda --dtype bf16 --batch 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from diffusers import CogVideoXTransformer3DModel

from quality_vs_steps import parse_overrides  # beside this script

from layerflow_model.config import NUM_PROMPT_LAYERS, with_overrides
from layerflow_model.train_config import load_model_config
from layerflow_model.transformer import (
    OUR_ARGUMENTS,
    STOCK_LACKS_WEIGHTS,
    LayerFlowTransformer,
    given_layer_channels,
    transformer_kwargs,
)


def latent_layout(config) -> tuple[int, int, int]:
    """(channels, spatial factor, latent frames per layer) of the config's codec, without loading it.

    A frame VAE: its latent channels and halvings from its config.json, every frame kept. The
    CogVideoX VAE: 16 channels, 8x spatial, 4x temporal (16 frames -> 4).
    """
    if config.codec.kind == "pixel_unshuffle":
        return 3 * config.codec.factor**2, config.codec.factor, config.clip.num_frames
    if config.codec.kind == "frame_vae":
        vae = json.loads((config.codec.path / "config.json").read_text())
        return vae["latent_channels"], config.codec.frame_factor, config.clip.num_frames
    return 16, 8, 1 + (config.clip.num_frames - 1) // 4


def text_dim(config) -> int:
    """Token width of the config's prompt encoder (T5-XXL 4096, MiniLM 384)."""
    return {"t5": 4096, "minilm": 384}.get(config.text_encoder.kind, config.text_encoder.hidden_size)


def step_seconds(model, video, text, repeats: int, warmup: int, **model_kwargs) -> list[float]:
    """Wall-clock seconds of ``repeats`` forward+backward steps after ``warmup`` untimed ones."""
    timestep = torch.full((video.shape[0],), 500.0, device=video.device)
    times = []
    for i in range(warmup + repeats):
        if video.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = model(video, text, timestep=timestep, **model_kwargs).sample
        loss = (out.float() ** 2).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)
        if video.is_cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="small", help="model preset name or a model config JSON/YAML file "
                        "(a whole ModelConfig, or preset and set)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model-config field, e.g. transformer.num_layers=6 (repeatable)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    args = parser.parse_args()

    config = with_overrides(load_model_config(args.config), parse_overrides(args.overrides))
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    channels, spatial, frames_per_layer = latent_layout(config)
    latent_size = (config.clip.height // spatial, config.clip.width // spatial)
    kwargs = transformer_kwargs(config, channels, latent_size, text_dim(config), frames_per_layer)
    frames = 4 * frames_per_layer
    tokens = config.text_encoder.tokens_per_prompt

    torch.manual_seed(0)
    layered = LayerFlowTransformer(**kwargs).to(args.device, dtype)
    plain = CogVideoXTransformer3DModel(**{k: v for k, v in kwargs.items() if k not in OUR_ARGUMENTS})
    plain = plain.to(args.device, dtype)
    plain.load_state_dict({k: v for k, v in layered.state_dict().items() if not k.startswith(STOCK_LACKS_WEIGHTS)})
    for model in (layered, plain):
        model.train()
        if args.gradient_checkpointing:
            model.enable_gradient_checkpointing()

    video = torch.randn(args.batch, frames, channels, *latent_size, device=args.device, dtype=dtype)
    text = torch.randn(args.batch, NUM_PROMPT_LAYERS, tokens, kwargs["text_embed_dim"], device=args.device, dtype=dtype)

    nothing_given = torch.zeros(args.batch, frames, dtype=torch.bool, device=args.device)  # (B, F): generation
    plain_video = video
    if layered.takes_given_channels:  # the plain model gets the channels ours builds inside
        plain_video = torch.cat([video, given_layer_channels(video, nothing_given)], dim=2)

    # Interleave the two so drift in machine load hits both alike.
    layered_times, plain_times = [], []
    for _ in range(args.repeats):
        layered_times += step_seconds(layered, video, text, repeats=1, warmup=args.warmup if not layered_times else 0,
                                      given_frames=nothing_given)
        plain_times += step_seconds(plain, plain_video, text.flatten(1, 2), repeats=1,
                                    warmup=args.warmup if not plain_times else 0)
        print(json.dumps({"layered_s": round(layered_times[-1], 4), "plain_s": round(plain_times[-1], 4)}), flush=True)

    result = {
        "config": args.config,
        "overrides": args.overrides,
        "device": args.device,
        "dtype": args.dtype,
        "batch": args.batch,
        "tokens": NUM_PROMPT_LAYERS * tokens + frames * (latent_size[0] // 2) * (latent_size[1] // 2),
        "layered_median_s": statistics.median(layered_times),
        "plain_median_s": statistics.median(plain_times),
        "ratio": statistics.median(layered_times) / statistics.median(plain_times),
        "repeats": args.repeats,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
