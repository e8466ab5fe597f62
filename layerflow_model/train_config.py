"""Typed training configs: one :class:`StageConfig` per stage run, a :class:`TrainConfig` for all three.

A stage is ``base`` (the model itself), ``motion`` (the motion LoRA on frozen clips) or
``content`` (the content LoRA on static images and moving copy-paste videos). The training
loop takes a flat :class:`StageConfig`; a :class:`TrainConfig` (a YAML/JSON file or a named
profile: ``quick``, ``default`` or ``gpu``) holds the settings of all three stages plus what they
share, and resolves one stage's config once the flow knows where earlier stages put their
artifacts. Every config rejects unknown keys and wrong types and names the offending field.

A training config file (YAML or JSON); stages that list no ``data`` get ``auto_data``::

    model: small            # a preset, or a JSON/YAML file: a ModelConfig, or {preset: small, set: {a.b: value}}
    seed: 0
    device: auto            # auto | cpu | cuda
    mixed_precision: auto   # auto (bf16 on a GPU that has it) | no | bf16 | fp16
    base:    {data: [shards/synthetic], steps: 500, batch_size: 8, lr: 5.0e-4, warmup_steps: 50,
              checkpoint_every: 50, task_mixture: {generate: 1, decompose: 2, fill_background: 1, fill_foreground: 1}}
    motion:  {data: [shards/frozen], steps: 150, lr: 1.0e-3}
    content: {data: [shards/layered-images, shards/copy-paste], steps: 200, lr: 1.0e-3, static_batch_fraction: 0.5}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator, model_validator

from .conditioning import Task
from .config import MODEL_PRESETS, ModelConfig, StrictModel, get_config, with_overrides

StageName = Literal["base", "motion", "content"]
STAGES: tuple[StageName, ...] = ("base", "motion", "content")


class TaskMixture(StrictModel):
    """Relative weights of the tasks a batch trains (one task per batch), so one checkpoint serves all."""

    generate: float = Field(default=1.0, ge=0)
    decompose: float = Field(default=1.0, ge=0)
    fill_background: float = Field(default=1.0, ge=0)
    fill_foreground: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> "TaskMixture":
        if sum(self.weights().values()) <= 0:
            raise ValueError("task_mixture: at least one task needs a positive weight")
        return self

    def weights(self) -> dict[Task, float]:
        """Task -> weight (not normalised)."""
        return {task: getattr(self, task.value) for task in Task}


class StageSettings(StrictModel):
    """Hyperparameters of one stage; what a user sets per stage in a training config."""

    data: list[Path] = Field(default_factory=list, description="shard folders (each with manifest.json)")
    steps: int = Field(gt=0, description="optimizer steps")
    batch_size: int = Field(default=8, gt=0, description="samples per micro-batch")
    grad_accum: int = Field(default=1, gt=0, description="micro-batches per optimizer step")
    lr: float = Field(gt=0, description="peak learning rate")
    warmup_steps: int = Field(default=0, ge=0, description="linear warm-up, then cosine decay to lr/10")
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    ema_decay: float | None = Field(
        default=None, gt=0, lt=1,
        description="keep a moving average of the trained weights (decay min(ema_decay, (1+s)/(10+s)) at step s) "
                    "and export it instead of the last weights; None: off",
    )
    checkpoint_every: int = Field(default=100, gt=0, description="steps between checkpoints")
    keep_checkpoints: int = Field(default=2, gt=0, description="newest checkpoints kept on disk")
    task_mixture: TaskMixture = TaskMixture()
    static_batch_fraction: float = Field(
        default=0.5, ge=0, le=1, description="content: share of batches of static images (motion LoRA at 1)"
    )
    gradient_checkpointing: bool = False
    trainable_every_n_blocks: int | None = Field(
        default=None, gt=0, description="base: None trains every parameter; n trains blocks 0, n, 2n, ... and the layer embedding"
    )
    trainable: Literal["all", "prompt_readout"] = Field(
        default="all", description="base: 'prompt_readout' trains only the prompt readout of the model in init_from "
                                   "(added when it has none); every other weight, and so decomposition, stays as it was"
    )
    eval_batches: int = Field(default=1, ge=0, description="fixed-noise batches scored at every checkpoint")
    sample_steps: int | None = Field(default=None, gt=0, description="sampling steps of the stage-end previews (None: model default)")
    preview_count: int = Field(default=2, ge=0, description="sample clips written at the end of the stage")
    motion_check_count: int = Field(default=2, ge=0, description="content: clips sampled per motion-check arm")


class RunSettings(StrictModel):
    """What every stage of one training run shares."""

    model: str = Field(default="small", description="model preset name, or a JSON/YAML file: a whole ModelConfig, "
                                                      "or a preset and the fields it changes (preset, set)")
    seed: int = Field(default=0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        default="auto", description="auto: bf16 on a GPU that has it, else no"
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, spec: str) -> str:
        load_model_config(spec)
        return spec


STAGE_PATH_FIELDS = {"out_dir", "cache_dir", "init_from", "motion_adapter", "data"}  # where, not what: not in a key


class StageConfig(StageSettings, RunSettings):
    """Everything one stage run needs: the flat config the training loop reads.

    ``out_dir`` receives ``checkpoints/``, ``model/`` and/or ``adapter/``, ``samples/``;
    ``cache_dir`` the precomputed latents and prompt embeddings (shared between runs).
    """

    stage: StageName
    out_dir: Path
    cache_dir: Path | None = Field(default=None, description="None: out_dir/cache")
    init_from: Path | None = Field(default=None, description="motion, content: the base stage's model folder")
    motion_adapter: Path | None = Field(default=None, description="content: the motion stage's adapter folder")

    @model_validator(mode="after")
    def _check_combinations(self) -> "StageConfig":
        if not self.data:
            raise ValueError(f"data: stage {self.stage!r} needs at least one shard folder")
        if self.stage != "base":
            if self.init_from is None:
                raise ValueError(f"init_from: stage {self.stage!r} trains an adapter on a base model; set its model folder")
            if self.trainable_every_n_blocks is not None:
                raise ValueError("trainable_every_n_blocks: only the base stage trains blocks")
        if self.trainable == "prompt_readout":
            if self.stage != "base" or self.init_from is None:
                raise ValueError("trainable: 'prompt_readout' is a base stage on a finished model; set init_from to it")
            if self.trainable_every_n_blocks is not None:
                raise ValueError("trainable_every_n_blocks: a 'prompt_readout' stage trains no blocks")
            if not load_model_config(self.model).transformer.prompt_readout_rank:
                raise ValueError("trainable: 'prompt_readout' needs the model config's "
                                 "transformer.prompt_readout_rank > 0")
        if self.stage == "content" and self.motion_adapter is None:
            raise ValueError("motion_adapter: the content stage needs the motion stage's adapter folder")
        if self.stage != "content" and self.motion_adapter is not None:
            raise ValueError(f"motion_adapter: only the content stage uses a motion adapter, not {self.stage!r}")
        return self

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.out_dir / "cache"

    def identity(self) -> dict:
        """The config without where things are written or read from: what a result depends on besides inputs.

        ``trainable`` only when it is not "all", so the keys of stages made before it existed still match. A model
        config file stands in by what it holds, not where it lies: an edited file makes another run, not a skip.
        """
        default_trainable = {"trainable"} if self.trainable == "all" else set()
        identity = self.model_dump(mode="json", exclude=STAGE_PATH_FIELDS | default_trainable)
        if self.model not in MODEL_PRESETS:
            identity["model"] = load_model_config(self.model).model_dump(mode="json")
        return identity


class AutoData(StrictModel):
    """Data the flow builds itself for stages that list no shard folders (the quick profile)."""

    synthetic_count: int = Field(default=64, gt=0, description="base: synthetic layered videos")
    coarse_count: int = Field(default=8, gt=0, description="base: coarse layered videos (rembg matte, inpainted bg)")
    frozen_count: int = Field(default=32, gt=0, description="motion: frozen clips")
    static_count: int = Field(default=32, gt=0, description="content: static layered images")
    copy_paste_count: int = Field(default=32, gt=0, description="content: copy-pasted videos")


class TrainConfig(RunSettings):
    """A whole training run: shared settings, then one block per stage (a file, or a profile)."""

    base: StageSettings
    motion: StageSettings
    content: StageSettings
    auto_data: AutoData = AutoData()

    @model_validator(mode="after")
    def _check_stages(self) -> "TrainConfig":
        for stage in ("motion", "content"):
            if self.stage_settings(stage).trainable_every_n_blocks is not None:
                raise ValueError(f"{stage}.trainable_every_n_blocks: only the base stage trains blocks")
        for stage in STAGES:
            if self.stage_settings(stage).trainable != "all":
                raise ValueError(f"{stage}.trainable: a training run's stages train from its own base model; a "
                                 "'prompt_readout' stage runs on its own (layerflow train-stage)")
        return self

    def stage_settings(self, stage: StageName) -> StageSettings:
        return getattr(self, stage)

    def stage_config(self, stage: StageName, out_dir: Path, cache_dir: Path, data: list[Path],
                     init_from: Path | None = None, motion_adapter: Path | None = None) -> StageConfig:
        """The flat config of one stage, with the artifact folders of the stages before it."""
        fields = self.stage_settings(stage).model_dump() | self.model_dump(include=set(RunSettings.model_fields))
        return StageConfig.model_validate(fields | dict(
            stage=stage, out_dir=out_dir, cache_dir=cache_dir, data=data,
            init_from=init_from, motion_adapter=motion_adapter,
        ))


class PresetChanges(StrictModel):
    """A model config file that names a preset and the fields it changes, as dotted keys."""

    preset: str = Field(description="the named config it starts from (tiny, small, cogvideox-2b)")
    set: dict[str, object] = Field(default_factory=dict, description='e.g. {"objective.loss": "encoded_noise"}')

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str) -> str:
        if name not in MODEL_PRESETS:
            raise ValueError(f"unknown {name!r}; choose one of {sorted(MODEL_PRESETS)}")
        return name

    def resolve(self) -> ModelConfig:
        """The preset with the changes made, validated again (a wrong field or value is named)."""
        return with_overrides(get_config(self.preset), self.set)


def load_model_config(spec: str) -> ModelConfig:
    """A preset name (``tiny``, ``small``, ``cogvideox-2b``) or a JSON/YAML file: a whole ModelConfig, or a
    preset and the dotted fields it changes (``{"preset": "small", "set": {"objective.shift": 2.0}}``)."""
    if spec in MODEL_PRESETS:
        return get_config(spec)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"model: {spec!r} is neither a preset {sorted(MODEL_PRESETS)} nor a config file")
    fields = _read_mapping(path)
    if "preset" in fields:
        return PresetChanges.model_validate(fields).resolve()
    return ModelConfig.model_validate(fields)


def _read_mapping(path: Path) -> dict:
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
    return data


def read_train_config(path: Path) -> TrainConfig:
    """Read and validate a training config file (YAML or JSON); errors name the field."""
    return TrainConfig.model_validate(_read_mapping(Path(path)))


def load_training_config(profile: str | None, config_file: Path | None, seed: int | None = None) -> TrainConfig:
    """The config of exactly one of a profile name or a config file; ``seed`` (>= 0) replaces its
    training seed (None: keep it), so one recipe repeats over seeds."""
    if (profile is None) == (config_file is None):
        raise ValueError(f"give exactly one of a profile ({', '.join(PROFILES)}) and a config file")
    config = get_profile(profile) if profile is not None else read_train_config(config_file)
    return config if seed is None else TrainConfig.model_validate({**config.model_dump(), "seed": seed})


def read_stage_config(path: Path, **fields) -> StageConfig:
    """Read and validate one stage's config file (YAML or JSON), ``fields`` replacing its own."""
    return StageConfig.model_validate(_read_mapping(Path(path)) | fields)


#################################################################################
#                                   Profiles                                    #
#################################################################################

# quick: the whole flow, data included, in a few minutes on 2 CPU cores (tiny data, `small` model).
# default: sized for about 40 minutes of training on 2 CPU cores for `small`; the base stage exports its moving average.
# gpu: the default recipe with about 15x the base samples (batch 64, 5x the clips) on one CUDA GPU (7 minutes on an H200).
PROFILES: dict[str, TrainConfig] = {
    "quick": TrainConfig(
        model="small",
        device="cpu",
        base=StageSettings(steps=40, batch_size=4, lr=1e-3, warmup_steps=5, checkpoint_every=20),
        motion=StageSettings(steps=20, batch_size=4, lr=1e-3, checkpoint_every=10),
        content=StageSettings(steps=20, batch_size=4, lr=1e-3, checkpoint_every=10),
        auto_data=AutoData(synthetic_count=32, coarse_count=4, frozen_count=16, static_count=16, copy_paste_count=16),
    ),
    "default": TrainConfig(
        model="small",
        base=StageSettings(steps=2200, batch_size=8, lr=2e-3, warmup_steps=50, checkpoint_every=100, ema_decay=0.999,
                           task_mixture=TaskMixture(decompose=6.0)),
        motion=StageSettings(steps=100, batch_size=8, lr=1e-3, warmup_steps=10, checkpoint_every=50),
        content=StageSettings(steps=150, batch_size=8, lr=1e-3, warmup_steps=10, checkpoint_every=50,
                              task_mixture=TaskMixture(decompose=6.0)),
        auto_data=AutoData(synthetic_count=2000, coarse_count=32, frozen_count=250, static_count=250, copy_paste_count=250),
    ),
    "gpu": TrainConfig(
        model="small",
        device="cuda",
        base=StageSettings(steps=4000, batch_size=64, lr=2e-3, warmup_steps=100, checkpoint_every=500,
                           task_mixture=TaskMixture(decompose=6.0)),
        motion=StageSettings(steps=300, batch_size=64, lr=1e-3, warmup_steps=20, checkpoint_every=100),
        content=StageSettings(steps=500, batch_size=64, lr=1e-3, warmup_steps=20, checkpoint_every=100,
                              task_mixture=TaskMixture(decompose=6.0)),
        auto_data=AutoData(synthetic_count=10000, coarse_count=32, frozen_count=1000, static_count=1000,
                           copy_paste_count=1000),
    ),
}


def get_profile(name: str) -> TrainConfig:
    """A named profile; ``ValueError`` lists the valid names."""
    if name not in PROFILES:
        raise ValueError(f"profile: unknown {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]
