"""The layer-aware transformer: diffusers' CogVideoX DiT with per-layer prompts.

LayerFlow concatenates the four sub-clips (foreground, alpha, background, blend) on the
frame axis and the three per-layer prompts (fg, bg, blend) on the token axis, then runs
full 3D joint attention over all of it. The only new parameter is a layer embedding added
to each prompt's tokens; it is zero-initialised, so a stock CogVideoX checkpoint loads
unchanged and, given one clip and one prompt, computes exactly the stock model's output.
With ``pooled_prompts`` each prompt's mean token also enters the timestep embedding through
its ``cond_proj`` (diffusers' ``timestep_cond``), zero-initialised as well. With
``prompt_readout_rank`` a low-rank readout of those mean tokens adds the prompts' prior to the
predicted clean layers at every position (:mod:`.prompt_readout`), also starting at zero. With
``noise_encoder_frames`` it carries a :class:`~.noise_encoder.NoiseEncoder`, which training alone uses.
"""

from __future__ import annotations

import functools
import inspect

import torch
from diffusers import CogVideoXTransformer3DModel, ModelMixin  # noqa: F401  (see below)
from diffusers.models.embeddings import CogVideoXPatchEmbed
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from torch import nn
from torch.nn import functional as F

from .conditioning import LAYER_ORDER
from .config import NUM_PROMPT_LAYERS, ModelConfig
from .noise_encoder import NoiseEncoder
from .prompt_readout import PromptReadout, where_prompts_decide

# diffusers' pipeline loader looks a custom component's base class (``ModelMixin``) up in the
# component's own module, so it must be importable from here.

# Weights a stock CogVideoX checkpoint lacks, by name prefix: built at zero and trained by any base stage.
STOCK_LACKS_WEIGHTS = ("layer_embedding.", "time_embedding.cond_proj.", "prompt_readout.", "noise_encoder.")


#################################################################################
#                              Patch embedding                                  #
#################################################################################


class AnyTextLengthPatchEmbed(CogVideoXPatchEmbed):
    """CogVideoX's patch embedding for any number of text tokens.

    The stock module sizes its sincos position table by ``max_text_seq_length`` and fails
    when a sample has another text length (e.g. three prompts). Text positions in that table
    are zeros, so the same embedding for any text length is: zeros for the text tokens, then
    the video's sincos positions. Weights and parameter names are the stock ones.
    """

    def forward(self, text_embeds: torch.Tensor, image_embeds: torch.Tensor) -> torch.Tensor:
        """text_embeds (B, S, D_text), image_embeds (B, F, C, H, W) -> tokens (B, S + F*H*W/p^2, D)."""
        if self.use_learned_positional_embeddings:
            raise ValueError("learned positional embeddings (CogVideoX-5b-I2V) are not supported")
        text = self.text_proj(text_embeds)  # (B, S, D)
        batch, frames, channels, height, width = image_embeds.shape
        video = self.proj(image_embeds.reshape(-1, channels, height, width))  # (B*F, D, H/p, W/p)
        video = video.view(batch, frames, *video.shape[1:]).flatten(3).transpose(2, 3)  # (B, F, HW/p^2, D)
        video = video.flatten(1, 2)  # (B, N, D)
        if self.use_positional_embeddings:
            pre_compression_frames = (frames - 1) * self.temporal_compression_ratio + 1
            table = self._get_positional_embeddings(height, width, pre_compression_frames, device=video.device)
            video = video + table[:, self.max_text_seq_length :].to(dtype=video.dtype)  # text positions are 0
        return torch.cat([text, video], dim=1).contiguous()  # (B, S + N, D)


#################################################################################
#                        Given sub-clips as input channels                      #
#################################################################################


def input_channels(latent_channels: int, given_in_channels: bool) -> int:
    """Patch-embedding input channels: C, or C + 4 x (C + 1) with the given sub-clips as channels."""
    return latent_channels + (len(LAYER_ORDER) * (latent_channels + 1) if given_in_channels else 0)


def given_layer_channels(hidden_states: torch.Tensor, given_frames: torch.Tensor) -> torch.Tensor:
    """What every frame of every sub-clip also sees: the given sub-clips at the same time.

    hidden_states (B, F, C, h, w) with F = 4 x f sub-clip frames; given_frames (B, F) bool.
    Returns (B, F, 4 x (C + 1), h, w): for frame t of any sub-clip, the four sub-clips' latents at
    frame t (zeros where not given) each followed by its given flag (1 or 0).
    """
    batch, frames, channels, height, width = hidden_states.shape
    layers = len(LAYER_ORDER)
    given = given_frames.to(hidden_states.dtype)[:, :, None, None, None]  # (B, F, 1, 1, 1)
    flagged = torch.cat([hidden_states * given, given.expand(-1, -1, 1, height, width)], dim=2)  # (B, F, C+1, h, w)
    per_time = flagged.unflatten(1, (layers, frames // layers)).transpose(1, 2)  # (B, f, 4, C+1, h, w)
    per_time = per_time.flatten(2, 3)  # (B, f, 4(C+1), h, w)
    return per_time.repeat(1, layers, 1, 1, 1)  # (B, F, 4(C+1), h, w): frame l*f + t -> time t


#################################################################################
#                            Layer-aware transformer                            #
#################################################################################


class LayerFlowTransformer(CogVideoXTransformer3DModel):
    """CogVideoX DiT over concatenated sub-clips with per-layer prompts.

    Inputs to :meth:`forward`:
        hidden_states (B, F, C, h, w): the sub-clips' latents concatenated on the frame axis
            in the order fg, alpha, bg, blend (F = 4 x frames per layer);
        encoder_hidden_states (B, P, L, D): P prompts of L tokens each (P = 3: fg, bg, blend);
        timestep (B,): flow-matching sigma x 1000, in [0, 1000];
        given_frames (B, F) bool: which frames hold given (clean) sub-clips; needed only when
            the given sub-clips also enter as channels (``in_channels`` = C + 4 x (C + 1),
            :func:`input_channels`), where every token then sees them at its own time and place.
    With ``pooled_prompts`` (an argument beside the stock ones, saved in the config), each
    prompt's mean token, (B, 3 x D) with absent prompts as zeros, is projected and added to the
    timestep embedding, which modulates every block. With ``prompt_readout_rank`` r > 0 (and
    ``readout_frames``, the latent frames per sub-clip its prior is laid out for) a
    :class:`PromptReadout` of those mean tokens is added to the output on the sub-clips the
    prompts alone decide (:func:`where_prompts_decide`: all in generation, none in
    decomposition, a made foreground and alpha in a fill); the output then stands for the
    clean layers (prediction "sample"). With ``noise_encoder_frames`` F > 0 the model carries a
    :class:`NoiseEncoder` of clips of F latent frames (all four sub-clips), for ``objective.loss``
    "encoded_noise"; the forward pass does not use it. With ``noise_code_conditioning`` the made
    sub-clips' mean at each channel, (B, C) (:func:`noise_code`: at sigma 1 the per-clip noise
    they start from), enters the timestep embedding the same way, after the pooled prompts if any.
    Output: (B, F, C, h, w), same layout as ``hidden_states``.
    """

    @functools.wraps(CogVideoXTransformer3DModel.__init__)  # the stock arguments, so configs load
    def __init__(self, *args, pooled_prompts: bool = False, prompt_readout_rank: int = 0, readout_frames: int = 0,
                 noise_encoder_frames: int = 0, noise_code_conditioning: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_to_config(pooled_prompts=pooled_prompts, prompt_readout_rank=prompt_readout_rank,
                                readout_frames=readout_frames, noise_encoder_frames=noise_encoder_frames,
                                noise_code_conditioning=noise_code_conditioning)
        config = self.config
        if config.use_rotary_positional_embeddings:
            raise ValueError("LayerFlowTransformer supports the sincos (2B) layout only")
        stock_embed = self.patch_embed
        self.patch_embed = AnyTextLengthPatchEmbed(
            patch_size=config.patch_size,
            patch_size_t=config.patch_size_t,
            in_channels=config.in_channels,
            embed_dim=config.num_attention_heads * config.attention_head_dim,
            text_embed_dim=config.text_embed_dim,
            bias=config.patch_bias,
            sample_width=config.sample_width,
            sample_height=config.sample_height,
            sample_frames=config.sample_frames,
            temporal_compression_ratio=config.temporal_compression_ratio,
            max_text_seq_length=config.max_text_seq_length,
            spatial_interpolation_scale=config.spatial_interpolation_scale,
            temporal_interpolation_scale=config.temporal_interpolation_scale,
            use_positional_embeddings=not config.use_rotary_positional_embeddings,
            use_learned_positional_embeddings=config.use_learned_positional_embeddings,
        )
        self.patch_embed.load_state_dict(stock_embed.state_dict())
        # Layer embedding of the prompt index, added to that prompt's text tokens.
        # Zero-init: with it the model starts as (and loads as) the stock CogVideoX.
        self.layer_embedding = nn.Embedding(NUM_PROMPT_LAYERS, config.text_embed_dim)
        nn.init.zeros_(self.layer_embedding.weight)
        if self.condition_width:  # the stock TimestepEmbedding's slot for a condition, zero-init like the above
            inner_dim = config.num_attention_heads * config.attention_head_dim
            self.time_embedding.cond_proj = nn.Linear(self.condition_width, inner_dim, bias=False)
            nn.init.zeros_(self.time_embedding.cond_proj.weight)
        self.prompt_readout = None
        if prompt_readout_rank > 0:
            self.add_prompt_readout(prompt_readout_rank, readout_frames)
        self.noise_encoder = None
        if noise_encoder_frames > 0:
            self.add_noise_encoder(noise_encoder_frames)

    def add_prompt_readout(self, rank: int, readout_frames: int) -> None:
        """Give the model a new :class:`PromptReadout` of ``rank`` (its output zero, so nothing changes until it
        trains), its prior laid out for ``readout_frames`` latent frames per sub-clip; saved with the config."""
        if rank < 1 or readout_frames < 1:
            raise ValueError(f"a prompt readout needs rank >= 1 and readout_frames (the latent frames per sub-clip) "
                             f">= 1, got {rank} and {readout_frames}")
        config = self.config
        self.prompt_readout = PromptReadout(config.text_embed_dim, rank, readout_frames, config.out_channels,
                                            config.sample_height, config.sample_width)
        self.register_to_config(prompt_readout_rank=rank, readout_frames=readout_frames)

    def add_noise_encoder(self, frames: int) -> None:
        """Give the model a new :class:`NoiseEncoder` of clips of ``frames`` latent frames (all four sub-clips),
        its output zero (standard normal noise until it trains); saved with the config."""
        config = self.config
        self.noise_encoder = NoiseEncoder(frames, config.out_channels, config.sample_height, config.sample_width)
        self.register_to_config(noise_encoder_frames=frames)

    @property
    def condition_width(self) -> int:
        """Width of the timestep embedding's condition: 3 x D with pooled prompts, plus C with the noise code."""
        config = self.config
        return (NUM_PROMPT_LAYERS * config.text_embed_dim * config.pooled_prompts
                + config.out_channels * config.noise_code_conditioning)

    def add_noise_code_conditioning(self) -> None:
        """Let :func:`noise_code` enter the timestep embedding, its new projection columns zero (nothing changes until
        they train; a pooled prompts' projection keeps its weights); saved with the config."""
        old = self.time_embedding.cond_proj
        self.register_to_config(noise_code_conditioning=True)
        linear_1 = self.time_embedding.linear_1  # takes the condition's projection, added to the timestep's
        new = nn.Linear(self.condition_width, linear_1.in_features, bias=False, device=linear_1.weight.device,
                        dtype=linear_1.weight.dtype)
        with torch.no_grad():
            new.weight.zero_()
            if old is not None:
                new.weight[:, :old.in_features] = old.weight
        self.time_embedding.cond_proj = new

    @property
    def takes_given_channels(self) -> bool:
        """True when the given sub-clips also enter as input channels."""
        return self.config.in_channels == input_channels(self.config.out_channels, given_in_channels=True)

    def forward(self, hidden_states, encoder_hidden_states, timestep, given_frames=None, return_dict: bool = True,
                **kwargs):
        """See the class docstring for shapes; ``kwargs`` go to the stock forward."""
        latents = hidden_states  # (B, F, C, h, w)
        if self.takes_given_channels:
            if given_frames is None:
                raise ValueError("this transformer takes the given sub-clips as channels too: pass given_frames (B, F)")
            hidden_states = torch.cat([hidden_states, given_layer_channels(hidden_states, given_frames)], dim=2)
        if encoder_hidden_states.ndim != 4:
            raise ValueError(
                "encoder_hidden_states must be (B, prompts, tokens, dim), got shape "
                f"{tuple(encoder_hidden_states.shape)}"
            )
        num_prompts = encoder_hidden_states.shape[1]
        if num_prompts > NUM_PROMPT_LAYERS:
            raise ValueError(f"at most {NUM_PROMPT_LAYERS} prompts (fg, bg, blend), got {num_prompts}")
        layer_ids = torch.arange(num_prompts, device=encoder_hidden_states.device)
        layer_emb = self.layer_embedding(layer_ids).to(encoder_hidden_states.dtype)  # (P, D)
        text = encoder_hidden_states + layer_emb[None, :, None, :]  # (B, P, L, D)
        pooled = F.pad(encoder_hidden_states.mean(dim=2), (0, 0, 0, NUM_PROMPT_LAYERS - num_prompts))  # (B, 3, D)
        conditions = [pooled.flatten(1)] if self.config.pooled_prompts else []  # (B, 3D)
        if self.config.noise_code_conditioning:
            conditions.append(noise_code(latents, given_frames))  # (B, C)
        if conditions:
            kwargs["timestep_cond"] = torch.cat(conditions, dim=1)
        output = super().forward(
            hidden_states=hidden_states,  # (B, F, C, h, w)
            encoder_hidden_states=text.flatten(1, 2),  # (B, P*L, D)
            timestep=timestep,
            return_dict=False,
            **kwargs,
        )[0]  # (B, F, C, h, w)
        if self.prompt_readout is not None:
            prior = self.prompt_readout(pooled, output.shape[1], *output.shape[-2:])  # (B, F, C, h, w)
            output = output + where_prompts_decide(prior, given_frames)
        return Transformer2DModelOutput(sample=output) if return_dict else (output,)


# diffusers reads a model's config arguments from its __init__ signature: the stock ones plus ours.
_our_parameters = [
    inspect.Parameter("pooled_prompts", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
    inspect.Parameter("prompt_readout_rank", inspect.Parameter.KEYWORD_ONLY, default=0, annotation=int),
    inspect.Parameter("readout_frames", inspect.Parameter.KEYWORD_ONLY, default=0, annotation=int),
    inspect.Parameter("noise_encoder_frames", inspect.Parameter.KEYWORD_ONLY, default=0, annotation=int),
    inspect.Parameter("noise_code_conditioning", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
]
OUR_ARGUMENTS = tuple(parameter.name for parameter in _our_parameters)  # config arguments the stock model lacks
_stock_signature = inspect.signature(CogVideoXTransformer3DModel.__init__)
LayerFlowTransformer.__init__.__signature__ = _stock_signature.replace(
    parameters=[*_stock_signature.parameters.values(), *_our_parameters])


def noise_code(latents: torch.Tensor, given_frames: torch.Tensor | None = None) -> torch.Tensor:
    """latents (B, F, C, h, w), given_frames (B, F) bool or None (nothing given) -> (B, C): the mean at each channel
    over the frames to be made (zeros when every frame is given). At sigma 1 with per-clip noise it is exactly
    the noise those frames start from."""
    per_frame = latents.mean(dim=(3, 4))  # (B, F, C)
    if given_frames is None:
        return per_frame.mean(dim=1)
    made = (~given_frames.bool()).to(latents.dtype)[:, :, None]  # (B, F, 1)
    return (per_frame * made).sum(dim=1) / made.sum(dim=1).clamp(min=1)


def noise_encoder_frames(config: ModelConfig, latent_frames: int) -> int:
    """Latent frames (all four sub-clips of ``latent_frames`` each) a noise encoder of ``config`` reads; 0 when its
    objective needs none."""
    return len(LAYER_ORDER) * latent_frames if config.objective.loss == "encoded_noise" else 0


def transformer_kwargs(config: ModelConfig, latent_channels: int, latent_size: tuple[int, int], text_dim: int,
                       latent_frames: int) -> dict:
    """diffusers ``CogVideoXTransformer3DModel`` arguments for ``config`` (and ours).

    latent_size: (h, w) of one latent frame; text_dim: width of the prompt encoder's tokens;
    latent_frames: latent frames of one sub-clip of ``config.clip``.
    """
    t = config.transformer
    return dict(
        num_attention_heads=t.num_attention_heads,
        attention_head_dim=t.attention_head_dim,
        in_channels=input_channels(latent_channels, t.given_in_channels),
        out_channels=latent_channels,
        time_embed_dim=t.time_embed_dim,
        text_embed_dim=text_dim,
        num_layers=t.num_layers,
        sample_height=latent_size[0],
        sample_width=latent_size[1],
        patch_size=t.patch_size,
        max_text_seq_length=NUM_PROMPT_LAYERS * config.text_encoder.tokens_per_prompt,
        spatial_interpolation_scale=t.spatial_interpolation_scale,
        temporal_interpolation_scale=t.temporal_interpolation_scale,
        use_rotary_positional_embeddings=False,
        pooled_prompts=t.pooled_prompts,
        prompt_readout_rank=t.prompt_readout_rank,
        readout_frames=latent_frames if t.prompt_readout_rank else 0,
        noise_encoder_frames=noise_encoder_frames(config, latent_frames),
        noise_code_conditioning=t.noise_code_conditioning,
    )
