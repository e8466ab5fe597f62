"""Typed model configs and the registry of named presets (``tiny``, ``small``, ``cogvideox-2b``).

A :class:`ModelConfig` says everything needed to build or load a LayerFlow model: the
transformer's shape, the latent codec, the text encoder, the clip shape, the training
objective, the sampler and the LoRA adapters. Configs are pydantic models that reject
unknown keys and wrong types, naming the offending field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

NUM_PROMPT_LAYERS = 3  # fg, bg, blend prompts; alpha has none


class StrictModel(BaseModel):
    """A pydantic model that forbids unknown keys and is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TransformerConfig(StrictModel):
    """Shape of the CogVideoX-style DiT (diffusers ``CogVideoXTransformer3DModel`` arguments)."""

    num_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    attention_head_dim: int = Field(gt=0)
    patch_size: int = Field(default=2, gt=0)
    time_embed_dim: int = Field(default=512, gt=0)
    spatial_interpolation_scale: float = 1.875
    temporal_interpolation_scale: float = 1.0
    given_in_channels: bool = Field(
        default=False,
        description="also feed every token the given sub-clips at its own frame and position as extra input "
        "channels; False: given sub-clips only in their own frames (the paper)",
    )
    pooled_prompts: bool = Field(
        default=False,
        description="also add each prompt's mean token, projected, to the timestep embedding, so every block's "
        "modulation carries the prompts' gist (as SD3's pooled text); False: prompts reach the video through "
        "attention only (the paper)",
    )
    prompt_readout_rank: int = Field(
        default=0, ge=0,
        description="> 0: add to the predicted clean layers a readout of the prompts' mean tokens through this many "
        "numbers to every latent position (a prompt prior, on the layers the prompts alone decide: none when "
        "decomposing, only a made foreground and alpha when filling); 0: none (the paper)",
    )
    noise_code_conditioning: bool = Field(
        default=False,
        description="also add the per-clip noise the made sub-clips start from (their mean at each latent channel), "
        "projected, to the timestep embedding, so a one-step sampler's draw modulates every block (as pooled "
        "prompts do); needs objective.noise 'per_clip'; False: the draw enters as the input latents only",
    )

    @property
    def inner_dim(self) -> int:
        """Token width: heads x head dim."""
        return self.num_attention_heads * self.attention_head_dim


class CodecConfig(StrictModel):
    """The latent codec: a lossless pixel-unshuffle, a learned per-frame VAE or the CogVideoX VAE,
    the last two from local folders."""

    kind: Literal["pixel_unshuffle", "frame_vae", "cogvideox_vae"]
    factor: int = Field(default=4, gt=0, description="pixel_unshuffle: spatial factor")
    path: Path | None = Field(default=None, description="frame_vae: a local folder of a trained FrameVAECodec "
                                                        "(benchmarks/train_frame_vae.py writes one)")

    @model_validator(mode="after")
    def _check_path(self) -> "CodecConfig":
        if (self.kind == "frame_vae") != (self.path is not None):
            raise ValueError("path: a frame_vae codec loads from a local folder, and only it takes one")
        if self.path is not None and not (self.path / "config.json").is_file():
            raise ValueError(f"path: {self.path} holds no config.json (a FrameVAECodec saved with save_pretrained)")
        return self

    @property
    def frame_factor(self) -> int | None:
        """How many times smaller each side of a frame becomes: pixel-unshuffle's factor, a frame VAE's
        halvings (read from its config.json); None for the CogVideoX VAE, which sets its own sizes."""
        if self.kind == "pixel_unshuffle":
            return self.factor
        if self.kind == "frame_vae":
            return vae_spatial_compression(json.loads((self.path / "config.json").read_text())["block_out_channels"])
        return None


def vae_spatial_compression(block_out_channels: list[int] | tuple[int, ...]) -> int:
    """How many times smaller each side becomes in a diffusers VAE with these resolutions: 2^(n - 1)."""
    return 2 ** (len(block_out_channels) - 1)


class TextEncoderConfig(StrictModel):
    """Which prompt encoder: packaged MiniLM, a random tiny BERT (tests) or T5 from a local folder."""

    kind: Literal["minilm", "random_bert", "t5"]
    tokens_per_prompt: int = Field(gt=0)
    hidden_size: int = Field(default=32, gt=0, description="random_bert only")
    num_layers: int = Field(default=2, gt=0, description="random_bert only")


class ClipConfig(StrictModel):
    """Frames and size of each layer's clip, in pixels."""

    num_frames: int = Field(gt=0)
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    fps: int = Field(default=8, gt=0)


class LayerLossWeights(StrictModel):
    """Relative loss weight of each generated sub-clip; the loss is the weighted mean over them."""

    fg: float = Field(default=1.0, ge=0)
    alpha: float = Field(default=1.0, ge=0)
    bg: float = Field(default=1.0, ge=0)
    blend: float = Field(default=1.0, ge=0)

    def in_layer_order(self) -> tuple[float, float, float, float]:
        """(fg, alpha, bg, blend): the sub-clip order on the model's frame axis."""
        return (self.fg, self.alpha, self.bg, self.blend)


TaskKind = Literal["decompose", "fill", "generate"]  # the blend given, other layers given, none given
CLEAN_LAYER_PREDICTIONS = ("sample", "preconditioned_sample")  # predictions whose output stands for the clean layers


class ObjectiveConfig(StrictModel):
    """Flow-matching training objective: what the network predicts and where timesteps fall.

    ``one_step_fraction`` mixes in a one-step regressor: that share of the samples gets sigma
    exactly 1 (pure noise in the generated sub-clips, the given ones clean), where the loss
    asks the network for the clean layers outright, what a 1-step sampler returns.
    ``{decompose,fill,generate}_one_step_fraction`` set it per kind of task (None: the shared
    value), e.g. a regressor for decomposition and a flow model for generation.
    """

    prediction: Literal["velocity", "sample", "preconditioned_sample", "noise"] = Field(
        default="velocity", description="velocity; the clean layers, outright (sample) or as EDM's skip plus a "
                                        "scaled output (preconditioned_sample); or the noise")
    logit_normal_loc: float = 0.0
    logit_normal_scale: float = Field(default=1.0, gt=0)
    shift: float = Field(default=1.0, gt=0, description="sigma -> shift*sigma / (1 + (shift-1)*sigma)")
    one_step_fraction: float = Field(default=0.0, ge=0, le=1, description="share of samples trained at sigma = 1")
    decompose_one_step_fraction: float | None = Field(default=None, ge=0, le=1, description="blend given; None: one_step_fraction")
    fill_one_step_fraction: float | None = Field(default=None, ge=0, le=1, description="some other layers given; None: one_step_fraction")
    generate_one_step_fraction: float | None = Field(default=None, ge=0, le=1, description="no layer given; None: one_step_fraction")
    loss_space: Literal["velocity", "sample"] = Field(
        default="velocity", description="what the loss compares: velocities, or clean layers (a clean-layer prediction)")
    loss: Literal["squared_error", "energy_score", "nearest_draw", "encoded_noise"] = Field(
        default="squared_error", description="squared error; the energy score of two draws per sample against the "
                                             "clean layers, which a one-step sampler meets by drawing one answer, "
                                             "not their mean (needs loss_space sample); the squared error of the "
                                             "nearest of nearest_draw_candidates draws (implicit maximum likelihood); "
                                             "or the squared error of the draw from noise encoded from the sample's "
                                             "own layers, plus encoded_noise_kl_weight x its KL to the standard "
                                             "normal (a conditional VAE; needs noise per_clip)")
    nearest_draw_candidates: int = Field(default=8, ge=2, description="loss nearest_draw: draws (without gradient) "
                                                                      "per sample that the nearest is picked from")
    encoded_noise_kl_weight: float = Field(default=1e-3, gt=0, description="loss encoded_noise: weight of the "
                                                                           "encoded noise's KL (nats a sample)")
    noise: Literal["per_pixel", "per_clip"] = Field(
        default="per_pixel", description="the generated frames' noise: independent everywhere, or one draw per "
                                         "latent channel shared by every frame and position of a clip (a one-step "
                                         "sampler's randomness as one choice per clip; needs one_step_fraction 1)")
    text_dropout: float = Field(default=0.1, ge=0, le=1)
    layer_loss_weights: LayerLossWeights = LayerLossWeights()

    def one_step_fraction_for(self, kind: TaskKind) -> float:
        """The share of a kind's samples trained at sigma = 1, in [0, 1]."""
        fraction = getattr(self, f"{kind}_one_step_fraction")
        return self.one_step_fraction if fraction is None else fraction

    @model_validator(mode="after")
    def _check_combinations(self) -> "ObjectiveConfig":
        for field in ("one_step_fraction", *(f"{kind}_one_step_fraction" for kind in get_args(TaskKind))):
            if (getattr(self, field) or 0) > 0 and self.prediction == "noise":
                raise ValueError(
                    f"{field}: a noise prediction says nothing about the clean layers at sigma = 1; "
                    "use prediction velocity, sample or preconditioned_sample"
                )
        if self.loss_space == "sample" and self.prediction not in CLEAN_LAYER_PREDICTIONS:
            raise ValueError("loss_space: a loss on the clean layers needs prediction sample or preconditioned_sample")
        if self.noise == "per_clip" and any(self.one_step_fraction_for(kind) < 1 for kind in get_args(TaskKind)):
            raise ValueError("noise: per-clip noise is a one-step sampler's; set one_step_fraction 1 for every task")
        if self.loss == "encoded_noise" and self.noise != "per_clip":
            raise ValueError("loss: encoded noise is one draw per clip and latent channel; set noise per_clip")
        if self.loss == "energy_score" and self.loss_space != "sample":
            raise ValueError("loss: the energy score compares clean layers; set loss_space sample")
        return self


class SamplerConfig(StrictModel):
    """Default sampling settings of the pipeline, per kind of task; a kind's unset step count
    falls back to ``num_inference_steps`` and its unset guidance to ``guidance_scale``."""

    num_inference_steps: int = Field(default=20, gt=0)
    decompose_steps: int | None = Field(default=None, gt=0, description="blend given; None: num_inference_steps")
    fill_steps: int | None = Field(default=None, gt=0, description="some other layers given; None: num_inference_steps")
    generate_steps: int | None = Field(default=None, gt=0, description="no layer given; None: num_inference_steps")
    guidance_scale: float = Field(default=6.0, ge=1.0, description="classifier-free guidance (1 = off)")
    decompose_guidance: float | None = Field(default=None, ge=1.0, description="None: guidance_scale")
    fill_guidance: float | None = Field(default=None, ge=1.0, description="None: guidance_scale")
    generate_guidance: float | None = Field(default=None, ge=1.0, description="None: guidance_scale")
    decompose_flip_average: bool = Field(
        default=False, description="decompose the blend and its three mirror images (4 passes) and average the layers")
    decompose_refine_alpha: bool = Field(
        default=False, description="solve alpha and fg from the compositing equation where the model's alpha is unsure")


class LoraSettings(StrictModel):
    """The motion and content adapters: ranks and which blocks they sit on."""

    motion_rank: int = Field(default=8, gt=0)
    content_rank: int = Field(default=256, gt=0)
    every_n_blocks: int = Field(default=6, gt=0, description="adapters on blocks 0, n, 2n, ...")


class ModelConfig(StrictModel):
    """Everything that defines one LayerFlow model."""

    name: str
    transformer: TransformerConfig
    codec: CodecConfig
    text_encoder: TextEncoderConfig
    clip: ClipConfig
    objective: ObjectiveConfig = ObjectiveConfig()
    sampler: SamplerConfig = SamplerConfig()
    lora: LoraSettings = LoraSettings()
    pretrained_path: Path | None = Field(
        default=None, description="local diffusers CogVideoX folder (transformer/, vae/, text_encoder/, tokenizer/)"
    )

    @property
    def needs_pretrained_folder(self) -> bool:
        """True when the codec or the text encoder loads from a local CogVideoX folder."""
        return self.codec.kind == "cogvideox_vae" or self.text_encoder.kind == "t5"

    @model_validator(mode="after")
    def _check_combinations(self) -> "ModelConfig":
        if self.transformer.given_in_channels and self.pretrained_path is not None:
            raise ValueError(
                "transformer.given_in_channels: a stock CogVideoX checkpoint's patch embedding takes the latent "
                "channels only; turn it off with pretrained_path"
            )
        if self.transformer.prompt_readout_rank and self.objective.prediction != "sample":
            raise ValueError(
                "transformer.prompt_readout_rank: the readout adds a prior to the predicted clean layers; it needs "
                f"objective.prediction 'sample', not {self.objective.prediction!r}"
            )
        if self.transformer.noise_code_conditioning and self.objective.noise != "per_clip":
            raise ValueError(
                "transformer.noise_code_conditioning: the code is the per-clip noise the made sub-clips start from; "
                f"it needs objective.noise 'per_clip', not {self.objective.noise!r}"
            )
        if (frame_factor := self.codec.frame_factor) is not None:  # read once: a frame VAE's is in its file
            factor = frame_factor * self.transformer.patch_size
            for field in ("height", "width"):
                if getattr(self.clip, field) % factor:
                    raise ValueError(
                        f"clip.{field}={getattr(self.clip, field)} must be a multiple of "
                        f"the {self.codec.kind} codec's factor x transformer.patch_size = {factor}"
                    )
        return self


MODEL_PRESETS: dict[str, ModelConfig] = {
    # Tests: builds in about a second, 64 video tokens + 3 x 8 text tokens.
    "tiny": ModelConfig(
        name="tiny",
        transformer=TransformerConfig(num_layers=2, num_attention_heads=2, attention_head_dim=16, time_embed_dim=32),
        codec=CodecConfig(kind="pixel_unshuffle", factor=4),
        text_encoder=TextEncoderConfig(kind="random_bert", tokens_per_prompt=8, hidden_size=32, num_layers=1),
        clip=ClipConfig(num_frames=4, height=16, width=16),
        sampler=SamplerConfig(num_inference_steps=2),
        lora=LoraSettings(motion_rank=2, content_rank=4, every_n_blocks=1),
    ),
    # The embedded default: 32x32, 8-frame layers, 512 video tokens + 3 x 16 text tokens.
    # A one-step regressor of the clean layers, sampled in one step, that also sees the given
    # layers as input channels: within CPU budgets the velocity-trained flow model did not
    # learn alpha, and the given layers in their own frames only were learnt too slowly.
    # Three blocks: at 400 steps two to six blocks score alike, and three train about 2.2x
    # faster per step than six (benchmarks/MODEL_DESIGN.md). No guidance for any task: at one step
    # of a regressor, guidance moved generation away from its prompts and its layers apart.
    # Pooled prompts: generation learnt its prompts' colour within 1,000 steps in 3 seeds of 3 with them, 1 without.
    # A rank-16 prompt readout: generation alone moved its matte the prompted way on 30 of 32 validation clips
    # with it, 11 without (1,000 steps); the `default` profile's generation oracle 0.59 against 0.30.
    "small": ModelConfig(
        name="small",
        transformer=TransformerConfig(num_layers=3, num_attention_heads=4, attention_head_dim=64, time_embed_dim=256,
                                      given_in_channels=True, pooled_prompts=True, prompt_readout_rank=16),
        codec=CodecConfig(kind="pixel_unshuffle", factor=4),
        text_encoder=TextEncoderConfig(kind="minilm", tokens_per_prompt=16),
        clip=ClipConfig(num_frames=8, height=32, width=32),
        objective=ObjectiveConfig(prediction="sample", one_step_fraction=1.0),
        sampler=SamplerConfig(num_inference_steps=1, guidance_scale=1.0, decompose_flip_average=True,
                              decompose_refine_alpha=True),
        lora=LoraSettings(motion_rank=8, content_rank=32, every_n_blocks=2),
    ),
    # The paper's shapes: CogVideoX-2B, 16-frame 480x720 layers, 3 x 226 T5 tokens.
    "cogvideox-2b": ModelConfig(
        name="cogvideox-2b",
        transformer=TransformerConfig(num_layers=30, num_attention_heads=30, attention_head_dim=64),
        codec=CodecConfig(kind="cogvideox_vae"),
        text_encoder=TextEncoderConfig(kind="t5", tokens_per_prompt=226),
        clip=ClipConfig(num_frames=16, height=480, width=720),
        sampler=SamplerConfig(num_inference_steps=50, guidance_scale=6.0),
        lora=LoraSettings(motion_rank=8, content_rank=256, every_n_blocks=6),
    ),
}


def get_config(name: str, **overrides) -> ModelConfig:
    """The preset ``name`` with top-level fields replaced by ``overrides`` (validated again).

    Raises ``ValueError`` listing the valid names when ``name`` is unknown.
    """
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model config {name!r}; choose one of {sorted(MODEL_PRESETS)}")
    merged = MODEL_PRESETS[name].model_dump() | overrides
    return ModelConfig.model_validate(merged)


def with_overrides(config: ModelConfig, overrides: dict[str, object]) -> ModelConfig:
    """``config`` with fields replaced by dotted keys, e.g. ``{"objective.prediction": "sample"}``.

    The result is validated again, so a wrong value or an unknown field raises pydantic's
    ``ValidationError`` naming it; a key that walks into a non-config field raises ``ValueError``.
    """
    merged = config.model_dump()
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = merged
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{key}: {'.'.join(parents[:depth + 1])} is a value, not a config section")
        node[leaf] = value
    return ModelConfig.model_validate(merged)
