"""``LayerFlowPipeline``: every LayerFlow task from one model, in diffusers conventions.

Generation (no layer given), decomposition (blend given), background for a given foreground
(fg + alpha given), foreground for a given background (bg given), or any subset of given
layers. Given sub-clips enter as clean latents in their own frame positions, share the
sample's timestep and are written back after every sampling step, so they come back equal to
the inputs up to the codec's round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.loaders import CogVideoXLoraLoaderMixin
from diffusers.utils import BaseOutput

from .clip import LayeredClip, LayerPrompts, average_clips, flip_clip
from .compositing import refine_by_compositing
from .conditioning import (
    LAYER_ORDER,
    Task,
    decode_layers,
    encode_clips,
    frame_mask,
    given_layers_for,
    given_mask,
    task_kind,
    video_to_clip,
    with_given_layers,
)
from .config import NUM_PROMPT_LAYERS
from .objective import draw_noise, velocity_from_output
from .text_encoders import encode_layer_prompts

# diffusers' from_pretrained finds a folder's custom components only in modules already imported.
from .codec import CogVideoXVAECodec, FrameVAECodec, PixelUnshuffleCodec  # noqa: E402, F401, I001
from .transformer import LayerFlowTransformer  # noqa: E402, F401

EMPTY_PROMPTS = LayerPrompts(fg="", bg="", blend="")  # what text dropout trains the model on
MIRROR_AXES = ((), (2,), (1,), (1, 2))  # of a layer (T, H, W[, 3]): as is, left-right, upside down, both


def refined_by_compositing(clips: Sequence[LayeredClip], given: Sequence[LayeredClip],
                           given_names: Sequence[tuple[str, ...]]) -> list[LayeredClip]:
    """Each clip (given layers already put back) refined against its given blend
    (:func:`~.compositing.refine_by_compositing`), other given layers kept exact."""
    return [with_given_layers(refine_by_compositing(clip), given_clip, names)
            for clip, given_clip, names in zip(clips, given, given_names, strict=True)]


@dataclass
class LayerFlowPipelineOutput(BaseOutput):
    """``clips``: one LayeredClip per sample (all four layers); ``latents``: (B, 4*f, C, h, w);
    ``num_inference_steps`` and ``guidance_scale``: the sampling settings used (the caller's, or
    the task's defaults); ``flip_average``: whether the clips average mirrored passes (then
    ``latents`` are those of the unmirrored one); ``refine_alpha``: whether alpha and fg were
    refined by the compositing equation against the given blend."""

    clips: list[LayeredClip] | None
    latents: torch.Tensor
    num_inference_steps: int
    guidance_scale: float
    flip_average: bool = False
    refine_alpha: bool = False


class LayerFlowPipeline(DiffusionPipeline, CogVideoXLoraLoaderMixin):
    """Layer-aware text-to-video pipeline over a :class:`LayerFlowTransformer`.

    Components: ``transformer`` (LayerFlowTransformer), ``vae`` (a codec with
    ``encode_video``/``decode_latents``: PixelUnshuffleCodec, FrameVAECodec or CogVideoXVAECodec),
    ``text_encoder`` + ``tokenizer`` (a transformers pair), ``scheduler``
    (FlowMatchEulerDiscreteScheduler). Config: the default clip shape, what the network
    predicts ("velocity", "sample", "preconditioned_sample" or "noise"), the noise it starts from
    ("per_pixel" or "per_clip", :func:`~.objective.draw_noise`) and the default sampling steps and guidance per
    kind of task (:class:`~.config.SamplerConfig`: ``{decompose,fill,generate}_steps``, None
    meaning ``num_inference_steps``; ``{decompose,fill,generate}_guidance``, None meaning
    ``guidance_scale``; ``decompose_flip_average``, ``decompose_refine_alpha``).
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae"

    def __init__(
        self,
        transformer,
        vae,
        text_encoder,
        tokenizer,
        scheduler: FlowMatchEulerDiscreteScheduler,
        num_frames: int = 8,
        height: int = 32,
        width: int = 32,
        fps: int = 8,
        prediction: str = "velocity",
        noise: str = "per_pixel",
        num_inference_steps: int = 20,
        decompose_steps: int | None = None,
        fill_steps: int | None = None,
        generate_steps: int | None = None,
        guidance_scale: float = 6.0,
        decompose_guidance: float | None = None,
        fill_guidance: float | None = None,
        generate_guidance: float | None = None,
        decompose_flip_average: bool = False,
        decompose_refine_alpha: bool = False,
    ):
        super().__init__()
        self.register_modules(
            transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
        )
        self.register_to_config(
            num_frames=num_frames, height=height, width=width, fps=fps, prediction=prediction, noise=noise,
            num_inference_steps=num_inference_steps, decompose_steps=decompose_steps, fill_steps=fill_steps,
            generate_steps=generate_steps, guidance_scale=guidance_scale, decompose_guidance=decompose_guidance,
            fill_guidance=fill_guidance, generate_guidance=generate_guidance,
            decompose_flip_average=decompose_flip_average, decompose_refine_alpha=decompose_refine_alpha,
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved pipeline folder; weights are read from safetensors only."""
        kwargs.setdefault("use_safetensors", True)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @property
    def tokens_per_prompt(self) -> int:
        return self.transformer.config.max_text_seq_length // NUM_PROMPT_LAYERS

    def default_steps(self, given_names: Sequence[tuple[str, ...]]) -> int:
        """Sampling steps when the caller gives none, from the layers each sample is given.

        The blend given: ``decompose_steps``; other layers: ``fill_steps``; none: ``generate_steps``.
        A batch mixing these kinds, or a kind without its own count, uses ``num_inference_steps``.
        """
        return self._task_setting(given_names, "steps") or self.config.num_inference_steps

    def default_guidance(self, given_names: Sequence[tuple[str, ...]]) -> float:
        """Guidance scale when the caller gives none: ``{decompose,fill,generate}_guidance`` as
        :meth:`default_steps` picks, else ``guidance_scale``."""
        return self._task_setting(given_names, "guidance") or self.config.guidance_scale

    def default_flip_average(self, given_names: Sequence[tuple[str, ...]]) -> bool:
        """Whether to average mirrored passes when the caller does not say: ``decompose_flip_average``
        when every sample is a decomposition, else False."""
        return bool(self._task_setting(given_names, "flip_average"))

    def default_refine_alpha(self, given_names: Sequence[tuple[str, ...]]) -> bool:
        """Whether to refine alpha and fg by the compositing equation when the caller does not say:
        ``decompose_refine_alpha`` when every sample is a decomposition, else False."""
        return bool(self._task_setting(given_names, "refine_alpha"))

    def _task_setting(self, given_names: Sequence[tuple[str, ...]], setting: str):
        kinds = {task_kind(names) for names in given_names}
        return self.config.get(f"{kinds.pop()}_{setting}") if len(kinds) == 1 else None

    #############################################################################
    #                                  Inputs                                   #
    #############################################################################

    def check_inputs(self, prompt, prompt_embeds, negative_prompt, negative_prompt_embeds, given, num_frames, height, width):
        """Raise ``ValueError`` naming the argument that is wrong and what was expected."""
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("pass exactly one of `prompt` and `prompt_embeds`")
        if negative_prompt is not None and negative_prompt_embeds is not None:
            raise ValueError("pass at most one of `negative_prompt` and `negative_prompt_embeds`")
        if prompt is not None:
            for p in prompt:
                if not isinstance(p, LayerPrompts):
                    raise ValueError(f"`prompt` must be LayerPrompts (fg, bg, blend) or a list of them, got {type(p).__name__}")
        for name, embeds in (("prompt_embeds", prompt_embeds), ("negative_prompt_embeds", negative_prompt_embeds)):
            if embeds is not None and (embeds.ndim != 4 or embeds.shape[1] != NUM_PROMPT_LAYERS):
                raise ValueError(f"`{name}` must be (B, 3, tokens, dim) for the fg, bg, blend prompts, got {tuple(embeds.shape)}")
        batch = len(prompt) if prompt is not None else prompt_embeds.shape[0]
        if negative_prompt is not None and len(negative_prompt) != batch:
            raise ValueError(f"`negative_prompt` has {len(negative_prompt)} entries but there are {batch} prompts")
        if given is not None:
            if len(given) != batch:
                raise ValueError(f"`given` has {len(given)} clips but there are {batch} prompts")
            for clip in given:
                if clip.num_frames != num_frames or tuple(clip.size) != (height, width):
                    raise ValueError(
                        f"given clip is {clip.num_frames} frames of {clip.size[0]}x{clip.size[1]}, expected "
                        f"{num_frames} frames of {height}x{width} (set num_frames/height/width to match)"
                    )
        factor = self.vae.spatial_compression * self.transformer.config.patch_size
        if height % factor or width % factor:
            raise ValueError(f"`height` and `width` must be multiples of {factor}, got {height}x{width}")

    def encode_prompt(self, prompts: Sequence[LayerPrompts]) -> torch.Tensor:
        """Per-layer prompts of B samples -> (B, 3, L, D) embeddings on the transformer's device/dtype."""
        embeds = encode_layer_prompts(self.tokenizer, self.text_encoder, prompts, self.tokens_per_prompt)
        return embeds.to(device=self._execution_device, dtype=self.transformer.dtype)

    #############################################################################
    #                                 Sampling                                  #
    #############################################################################

    @torch.no_grad()
    def __call__(
        self,
        prompt: LayerPrompts | Sequence[LayerPrompts] | None = None,
        given: LayeredClip | Sequence[LayeredClip] | None = None,
        task: Task | str | None = None,
        negative_prompt: LayerPrompts | Sequence[LayerPrompts] | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        generator: torch.Generator | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: str = "clip",
        return_dict: bool = True,
        flip_average: bool | None = None,
        refine_alpha: bool | None = None,
        latents: torch.Tensor | None = None,
    ):
        """Sample layered clips.

        prompt: per-layer prompts, one per sample; given: clips holding the given layers (one
        per sample; a task name picks which of their layers to use, else all they hold);
        prompt_embeds: (B, 3, L, D) instead of ``prompt``; num_inference_steps and
        guidance_scale (1 = no guidance): None takes the config's for the task
        (:meth:`default_steps`, :meth:`default_guidance`). flip_average: sample the given
        layers as they are and mirrored left-right, upside down and both (4 passes, prompts
        unchanged), mirror the results back and average them (``fg`` premultiplied); None takes
        the config's (:meth:`default_flip_average`; never with ``output_type="latent"``).
        refine_alpha: where the model's alpha is unsure, solve alpha and fg from the compositing
        equation against the given blend (:func:`~.compositing.refine_by_compositing`; after
        the mirrored passes are averaged); needs the blend given; None takes the config's
        (:meth:`default_refine_alpha`; never with ``output_type="latent"``). latents: (B, F, C, h, w)
        the starting noise of the generated sub-clips, as diffusers pipelines take it, instead of a draw
        from ``generator``. Returns :class:`LayerFlowPipelineOutput` (``output_type="latent"`` skips decoding).
        """
        # 1. Defaults and checks
        num_frames = num_frames or self.config.num_frames
        height = height or self.config.height
        width = width or self.config.width
        prompt = [prompt] if isinstance(prompt, LayerPrompts) else prompt
        negative_prompt = [negative_prompt] if isinstance(negative_prompt, LayerPrompts) else negative_prompt
        given = [given] if isinstance(given, LayeredClip) else given
        self.check_inputs(prompt, prompt_embeds, negative_prompt, negative_prompt_embeds, given, num_frames, height, width)
        batch = len(prompt) if prompt is not None else prompt_embeds.shape[0]
        device = self._execution_device

        # 2. Which layers are given, per sample
        given_names = [given_layers_for(task, clip) for clip in (given or [None] * batch)]
        if flip_average is None:
            flip_average = self.default_flip_average(given_names) and output_type != "latent"
        if refine_alpha is None:
            refine_alpha = self.default_refine_alpha(given_names) and output_type != "latent"
        if refine_alpha and (output_type == "latent" or not all("blend" in names for names in given_names)):
            raise ValueError("`refine_alpha` solves the compositing equation against the given blend: every sample "
                             "needs the blend given, and output_type 'clip'")
        if flip_average:
            if given is None or output_type == "latent":
                raise ValueError("`flip_average` mirrors given layers and averages decoded clips: it needs `given` "
                                 "and output_type 'clip'")
            passes = [self(prompt, [flip_clip(clip, axes) for clip in given], task, negative_prompt, num_frames,
                           height, width, num_inference_steps, guidance_scale, generator, prompt_embeds,
                           negative_prompt_embeds, flip_average=False, refine_alpha=False, latents=latents)
                      for axes in MIRROR_AXES]
            clips = [average_clips([flip_clip(out.clips[i], axes) for out, axes in zip(passes, MIRROR_AXES)])
                     for i in range(batch)]
            clips = [with_given_layers(c, g, names) for c, g, names in zip(clips, given, given_names, strict=True)]
            if refine_alpha:
                clips = refined_by_compositing(clips, given, given_names)
            if not return_dict:
                return (clips, passes[0].latents)
            return LayerFlowPipelineOutput(clips=clips, latents=passes[0].latents,
                                           num_inference_steps=passes[0].num_inference_steps,
                                           guidance_scale=passes[0].guidance_scale, flip_average=True,
                                           refine_alpha=refine_alpha)
        guidance_scale = guidance_scale or self.default_guidance(given_names)
        do_cfg = guidance_scale > 1.0
        layer_mask = torch.stack([given_mask(names) for names in given_names]).to(device)  # (B, 4)

        # 3. Prompt embeddings: conditional, and empty prompts for guidance
        if prompt_embeds is None:
            prompt_embeds = self.encode_prompt(prompt)  # (B, 3, L, D)
        if do_cfg:
            if negative_prompt_embeds is None:
                negative_prompt_embeds = self.encode_prompt(negative_prompt or [EMPTY_PROMPTS] * batch)
            prompt_embeds = torch.cat([negative_prompt_embeds, prompt_embeds])  # (2B, 3, L, D)

        # 4. Latents: the given sub-clips encoded, noise elsewhere
        frames_per_layer = self.vae.latent_frames(num_frames)
        latent_shape = (
            batch,
            len(LAYER_ORDER) * frames_per_layer,
            self.transformer.config.out_channels,
            height // self.vae.spatial_compression,
            width // self.vae.spatial_compression,
        )
        dtype = self.transformer.dtype
        if latents is not None and tuple(latents.shape) != latent_shape:
            raise ValueError(f"`latents` must be of shape {latent_shape}, got {tuple(latents.shape)}")
        noise = draw_noise(latent_shape, self.config.noise, generator) if latents is None else latents
        noise = noise.to(device, dtype)
        given_frames = frame_mask(layer_mask, frames_per_layer)  # (B, F)
        if given is not None:
            clean = encode_clips(self.vae, given).to(device, dtype)  # (B, F, C, h, w)
        else:
            clean = torch.zeros(latent_shape, device=device, dtype=dtype)
        keep = given_frames[:, :, None, None, None]  # (B, F, 1, 1, 1)
        latents = torch.where(keep, clean, noise)

        # 5. Timesteps
        num_inference_steps = num_inference_steps or self.default_steps(given_names)
        self.scheduler.set_timesteps(num_inference_steps, device=device)

        # 6. Denoising loop; given latents written back after every step
        input_given = torch.cat([given_frames] * 2) if do_cfg else given_frames  # (B or 2B, F)
        with self.progress_bar(total=num_inference_steps) as progress_bar:
            for t in self.scheduler.timesteps:
                model_input = torch.cat([latents] * 2) if do_cfg else latents
                timestep = t.expand(model_input.shape[0])  # (B or 2B,)
                output = self.transformer(model_input, prompt_embeds, timestep=timestep, given_frames=input_given).sample
                sigma = timestep / self.scheduler.config.num_train_timesteps
                velocity = velocity_from_output(output, model_input, sigma, self.config.prediction)
                if do_cfg:
                    uncond, cond = velocity.chunk(2)
                    velocity = uncond + guidance_scale * (cond - uncond)
                latents = self.scheduler.step(velocity, t, latents, return_dict=False)[0]
                latents = torch.where(keep, clean, latents)
                progress_bar.update()

        # 7. Decode each sub-clip and split into layers
        clips = None
        if output_type != "latent":
            video = decode_layers(self.vae, latents)  # (B, 4, T, 3, H, W)
            clips = [video_to_clip(sample) for sample in video]
            if given is not None:
                clips = [with_given_layers(c, g, names) for c, g, names in zip(clips, given, given_names, strict=True)]
            if refine_alpha:
                clips = refined_by_compositing(clips, given, given_names)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (clips, latents)
        return LayerFlowPipelineOutput(clips=clips, latents=latents, num_inference_steps=num_inference_steps,
                                       guidance_scale=guidance_scale, refine_alpha=refine_alpha)
