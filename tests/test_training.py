"""The three training stages on the tiny model: what each trains, and what each hands over."""

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from data_recipes.build import build
from data_recipes.frozen import FrozenConfig, FrozenRecipe
from data_recipes.synthetic import SyntheticConfig, SyntheticRecipe
from layerflow_model import LayeredClip, LayerFlowPipeline, LayerPrompts, Task, lora
from layerflow_model.callbacks import NoCallbacks
from layerflow_model.checkpoint import TRAINABLE_FILE, complete_checkpoints
from layerflow_model.config import with_overrides
from layerflow_model.latent_cache import load_or_build_cache
from layerflow_model.train_config import StageConfig, TaskMixture, load_model_config
from layerflow_model.training import (
    CONFIG_FILE,
    MODEL_CONFIG_FILE,
    batch_rng,
    check_resumable,
    draw_batch,
    sample_pools,
    select_trainable,
    stage_pipeline,
    train_stage,
)
from layerflow_model.weight_average import EMA_FILE

TINY = dict(model="tiny", device="cpu", steps=4, batch_size=2, lr=1e-3, checkpoint_every=2, sample_steps=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Shard folders at the tiny model's shape: moving synthetic clips and their frozen copies."""
    root = tmp_path_factory.mktemp("data")
    build(SyntheticRecipe(SyntheticConfig(count=6, frames=4, height=16, width=16)), root / "synthetic")
    build(FrozenRecipe(FrozenConfig(src=root / "synthetic")), root / "frozen")
    return {"moving": root / "synthetic", "static": root / "frozen"}


@pytest.fixture(scope="module")
def stages(data, tmp_path_factory):
    """base -> motion -> content, as the training flow chains them; stage -> StageArtifacts."""
    out = tmp_path_factory.mktemp("stages")
    base = train_stage(StageConfig(stage="base", data=[data["moving"]], out_dir=out / "base", **TINY))
    motion = train_stage(StageConfig(stage="motion", data=[data["static"]], out_dir=out / "motion",
                                     init_from=base.model_dir, gradient_checkpointing=True, **TINY))
    content = train_stage(StageConfig(stage="content", data=[data["static"], data["moving"]], out_dir=out / "content",
                                      init_from=base.model_dir, motion_adapter=motion.adapter_dir, **TINY))
    return {"base": base, "motion": motion, "content": content}


def transformer_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(model_dir / "transformer" / "diffusion_pytorch_model.safetensors")


def test_base_trains_the_model_from_scratch_and_saves_a_pipeline(stages):
    base = stages["base"]
    assert base.final_step == 4
    assert [step for step, _ in complete_checkpoints(base.out_dir)] == [2, 4]
    fresh = stage_pipeline(StageConfig(stage="base", data=[Path(".")], out_dir=Path("."), **TINY), load_model_config("tiny"))
    trained = transformer_weights(base.model_dir)
    assert not torch.equal(trained["layer_embedding.weight"], fresh.transformer.layer_embedding.weight)
    assert sorted(p.name for p in base.samples_dir.iterdir()) == ["sample-0.gif", "sample-0.webm", "sample-1.gif", "sample-1.webm"]


def test_base_can_train_every_nth_block_and_the_weights_a_stock_checkpoint_lacks(data):
    config = StageConfig(stage="base", data=[data["moving"]], out_dir=Path("."), trainable_every_n_blocks=2, **TINY)
    model = with_overrides(load_model_config("tiny"), {
        "transformer.pooled_prompts": True, "transformer.prompt_readout_rank": 2, "objective.prediction": "sample"})
    transformer = stage_pipeline(config, model).transformer  # 2 blocks
    select_trainable(transformer, config)
    trainable = {".".join(name.split(".")[:2]) for name, p in transformer.named_parameters() if p.requires_grad}
    assert trainable == {"transformer_blocks.0", "layer_embedding.weight", "time_embedding.cond_proj",
                         "prompt_readout.prompt_scale", "prompt_readout.prompt_shift", "prompt_readout.down",
                         "prompt_readout.up"}


def test_a_prompt_readout_is_standardised_on_the_training_prompts_and_trained(data, tmp_path):
    model = with_overrides(load_model_config("tiny"), {"transformer.prompt_readout_rank": 2,
                                                       "objective.prediction": "sample"})
    model_file = tmp_path / "model.json"
    model_file.write_text(model.model_dump_json())
    config = StageConfig(stage="base", data=[data["moving"]], out_dir=tmp_path / "base",
                         **{**TINY, "model": str(model_file)})
    base = train_stage(config)
    weights = transformer_weights(base.model_dir)
    cache, _ = load_or_build_cache(LayerFlowPipeline.from_pretrained(base.model_dir), config.data, model,
                                   config.resolved_cache_dir)
    pooled = cache.pooled_prompt_embeds()  # (N, 3, D): each training prompt's mean token
    standardised = pooled * weights["prompt_readout.prompt_scale"] + weights["prompt_readout.prompt_shift"]
    assert standardised.mean(dim=0).abs().max() < 0.05  # set from them, then trained 4 steps
    assert (standardised.std(dim=0) - 1).abs().max() < 0.05
    assert weights["prompt_readout.up.weight"].abs().sum() > 0  # starts at zero: it trained


def test_a_prompt_readout_trained_alone_on_a_finished_model_leaves_its_other_weights_and_decomposition(data, tmp_path):
    clean_layers = with_overrides(load_model_config("tiny"), {"objective.prediction": "sample"})
    with_readout = with_overrides(clean_layers, {"transformer.prompt_readout_rank": 2})
    for name, model in (("plain", clean_layers), ("readout", with_readout)):
        (tmp_path / f"{name}.json").write_text(model.model_dump_json())
    finished = train_stage(StageConfig(stage="base", data=[data["moving"]], out_dir=tmp_path / "finished",
                                       **{**TINY, "model": str(tmp_path / "plain.json")})).model_dir

    readout_config = StageConfig(
        stage="base", data=[data["moving"]], out_dir=tmp_path / "readout", init_from=finished,
        trainable="prompt_readout", task_mixture=TaskMixture(generate=1, decompose=0, fill_background=0, fill_foreground=1),
        **{**TINY, "model": str(tmp_path / "readout.json")})
    readout = train_stage(readout_config)

    before, after = transformer_weights(finished), transformer_weights(readout.model_dir)
    assert sorted(set(after) - set(before)) == ["prompt_readout.down.bias", "prompt_readout.down.weight",
                                                "prompt_readout.prompt_scale", "prompt_readout.prompt_shift",
                                                "prompt_readout.up.bias", "prompt_readout.up.weight"]
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert after["prompt_readout.up.weight"].abs().sum() > 0  # starts at zero: it trained
    again = StageConfig.model_validate(readout_config.model_dump() | {"out_dir": tmp_path / "again"})
    retrained = transformer_weights(train_stage(again).model_dir)
    assert all(torch.equal(after[name], weights) for name, weights in retrained.items())  # the readout's start seeded
    pipes = [LayerFlowPipeline.from_pretrained(folder) for folder in (finished, readout.model_dir)]
    blend = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
    prompts = LayerPrompts(fg="a red circle", bg="green stripes", blend="a red circle over green stripes")
    layers = [pipe(prompts, given=LayeredClip(blend=blend), task="decompose",
                   generator=torch.Generator().manual_seed(0)).clips[0] for pipe in pipes]
    np.testing.assert_array_equal(layers[0].alpha, layers[1].alpha)
    np.testing.assert_array_equal(layers[0].bg, layers[1].bg)
    generated = [pipe(prompts, generator=torch.Generator().manual_seed(0)).clips[0] for pipe in pipes]
    assert not np.array_equal(generated[0].alpha, generated[1].alpha)


def test_a_model_trained_on_from_another_samples_as_its_stage_trained_it(stages, data, tmp_path):
    # The finished tiny base model samples from per-pixel noise; trained on as a one-step sampler under the energy
    # score from per-clip noise, the model it saves starts from per-clip noise too.
    energy = with_overrides(load_model_config("tiny"), {
        "objective.prediction": "sample", "objective.one_step_fraction": 1.0, "objective.loss_space": "sample",
        "objective.loss": "energy_score", "objective.noise": "per_clip"})
    (tmp_path / "energy.json").write_text(energy.model_dump_json())
    assert LayerFlowPipeline.from_pretrained(stages["base"].model_dir).config.noise == "per_pixel"
    trained = train_stage(StageConfig(stage="base", data=[data["moving"]], out_dir=tmp_path / "energy",
                                      init_from=stages["base"].model_dir,
                                      **{**TINY, "model": str(tmp_path / "energy.json")}))
    config = LayerFlowPipeline.from_pretrained(trained.model_dir).config
    assert (config.prediction, config.noise) == ("sample", "per_clip")


def test_a_model_trained_on_under_the_encoded_noise_gets_a_noise_encoder_and_trains_it(stages, data, tmp_path):
    encoded = with_overrides(load_model_config("tiny"), {
        "objective.prediction": "sample", "objective.one_step_fraction": 1.0, "objective.loss_space": "sample",
        "objective.loss": "encoded_noise", "objective.noise": "per_clip"})
    (tmp_path / "encoded.json").write_text(encoded.model_dump_json())
    logged = []  # every step's figures, as a tracker receives them

    class StepRecorder(NoCallbacks):
        def on_step(self, step, metrics):
            logged.append(metrics)

    trained = train_stage(StageConfig(stage="base", data=[data["moving"]], out_dir=tmp_path / "encoded",
                                      init_from=stages["base"].model_dir,
                                      **{**TINY, "model": str(tmp_path / "encoded.json")}), StepRecorder())
    training_steps = [metrics for metrics in logged if "loss" in metrics]
    assert training_steps and all(metrics["noise_kl"] >= 0 for metrics in training_steps)  # the KL beside the loss
    before, after = transformer_weights(stages["base"].model_dir), transformer_weights(trained.model_dir)
    assert sorted({name.split(".")[1] for name in set(after) - set(before)}) == ["hidden", "out", "reduce"]
    assert after["noise_encoder.out.weight"].abs().sum() > 0  # starts at zero: it trained
    assert LayerFlowPipeline.from_pretrained(trained.model_dir).config.noise == "per_clip"


def test_a_model_trained_on_with_the_noise_code_gets_its_projection_and_trains_it(stages, data, tmp_path):
    coded = with_overrides(load_model_config("tiny"), {
        "objective.prediction": "sample", "objective.one_step_fraction": 1.0, "objective.loss_space": "sample",
        "objective.loss": "encoded_noise", "objective.noise": "per_clip", "transformer.noise_code_conditioning": True})
    (tmp_path / "coded.json").write_text(coded.model_dump_json())

    trained = train_stage(StageConfig(stage="base", data=[data["moving"]], out_dir=tmp_path / "coded",
                                      init_from=stages["base"].model_dir,
                                      **{**TINY, "model": str(tmp_path / "coded.json")}))

    assert "time_embedding.cond_proj.weight" not in transformer_weights(stages["base"].model_dir)
    projection = transformer_weights(trained.model_dir)["time_embedding.cond_proj.weight"]  # (inner, C)
    assert projection.shape[1] == coded.codec.factor**2 * 3 and projection.abs().sum() > 0  # starts at zero: it trained
    assert LayerFlowPipeline.from_pretrained(trained.model_dir).transformer.config.noise_code_conditioning


def test_motion_trains_only_the_motion_lora_with_gradient_checkpointing(stages):
    motion = stages["motion"]
    adapter = load_file(motion.adapter_dir / "pytorch_lora_weights.safetensors")
    assert adapter and all(".lora_A." in k or ".lora_B." in k for k in adapter)
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)  # B starts at zero: it trained
    # The checkpoints hold the adapter being trained, not the frozen base model under it.
    _, folder = complete_checkpoints(motion.out_dir)[-1]
    saved = load_file(folder / TRAINABLE_FILE)
    assert sorted(saved) == sorted(k for k, _ in named_lora(stages, "motion"))
    assert not (folder / "model.safetensors").exists()


def named_lora(stages, adapter: str) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) of the ``adapter`` LoRA weights in a motion-stage transformer rebuilt from its config."""
    config = StageConfig.model_validate_json((stages["motion"].out_dir / CONFIG_FILE).read_text())
    transformer = stage_pipeline(config, load_model_config("tiny")).transformer
    return [(n, p) for n, p in transformer.named_parameters() if "lora_" in n and f".{adapter}." in n]


def motion_stage_stopped_at_step_2(stages, tmp_path) -> StageConfig:
    """The motion stage's config, in a new folder holding only its step-2 checkpoint: a run to resume."""
    motion = stages["motion"]
    shutil.copytree(motion.out_dir / "checkpoints" / "step-00000002", tmp_path / "motion" / "checkpoints" / "step-00000002")
    return StageConfig.model_validate_json((motion.out_dir / CONFIG_FILE).read_text()).model_copy(
        update={"out_dir": tmp_path / "motion"})


def test_a_lora_stage_resumed_from_its_adapter_only_checkpoint_ends_where_an_unbroken_run_does(stages, tmp_path):
    resumed = train_stage(motion_stage_stopped_at_step_2(stages, tmp_path))
    assert resumed.final_step == 4
    unbroken = load_file(stages["motion"].adapter_dir / "pytorch_lora_weights.safetensors")
    again = load_file(resumed.adapter_dir / "pytorch_lora_weights.safetensors")
    assert sorted(again) == sorted(unbroken)
    for name, value in unbroken.items():
        torch.testing.assert_close(again[name], value)


def test_a_stage_refuses_to_resume_the_checkpoints_of_another_config(stages, tmp_path):
    base = stages["base"]
    config = StageConfig.model_validate_json((base.out_dir / CONFIG_FILE).read_text())
    with pytest.raises(ValueError, match="holds checkpoints of a run with another lr, steps; resume it with"):
        train_stage(config.model_copy(update={"lr": 5e-4, "steps": 8}))
    assert StageConfig.model_validate_json((base.out_dir / CONFIG_FILE).read_text()) == config  # left as it was
    # the same stage on a model file that holds another objective
    other_model = tmp_path / "model.json"
    other_model.write_text(with_overrides(load_model_config("tiny"), {"objective.shift": 2.0}).model_dump_json())
    with pytest.raises(ValueError, match="another model, model.objective; resume it with"):
        train_stage(config.model_copy(update={"model": str(other_model)}))


def test_a_stage_resumes_checkpoints_saved_before_a_model_field_existed(stages, tmp_path):
    folder = shutil.copytree(stages["base"].out_dir, tmp_path / "base")
    config = StageConfig.model_validate_json((folder / CONFIG_FILE).read_text()).model_copy(update={"out_dir": folder})
    saved = json.loads((folder / MODEL_CONFIG_FILE).read_text())
    del saved["transformer"]["noise_code_conditioning"]  # as a run before the field wrote it
    (folder / MODEL_CONFIG_FILE).write_text(json.dumps(saved))

    model = load_model_config(config.model)
    check_resumable(folder, config, model)  # the field at its default: the same model, so no refusal
    with pytest.raises(ValueError, match="another model.objective;"):  # while a changed field still refuses
        check_resumable(folder, config, with_overrides(model, {"objective.shift": 2.0}))


def test_a_stage_refuses_checkpoints_whose_saved_model_config_it_cannot_read(stages, tmp_path):
    folder = shutil.copytree(stages["base"].out_dir, tmp_path / "base")
    config = StageConfig.model_validate_json((folder / CONFIG_FILE).read_text()).model_copy(update={"out_dir": folder})
    saved = json.loads((folder / MODEL_CONFIG_FILE).read_text())
    saved["transformer"]["retired_option"] = True  # as a field a later version dropped
    (folder / MODEL_CONFIG_FILE).write_text(json.dumps(saved))

    with pytest.raises(ValueError, match="(?s)model_config.json holds a model config this version cannot read.*"
                                         "transformer.retired_option"):
        check_resumable(folder, config, load_model_config(config.model))


def test_a_stage_with_a_moving_average_exports_the_average_and_resumes_it(data, tmp_path):
    config = StageConfig(stage="base", data=[data["moving"]], out_dir=tmp_path / "unbroken", ema_decay=0.9,
                         preview_count=0, **TINY)
    unbroken = train_stage(config)
    _, last = complete_checkpoints(unbroken.out_dir)[-1]
    averaged, final = load_file(last / EMA_FILE), load_file(last / TRAINABLE_FILE)
    exported = transformer_weights(unbroken.model_dir)
    assert sorted(averaged) == sorted(exported)  # a base stage averages every parameter
    for name, value in averaged.items():
        torch.testing.assert_close(exported[name], value)
    assert not all(torch.equal(final[name], value) for name, value in averaged.items())  # not the last weights

    stopped = tmp_path / "resumed" / "checkpoints" / "step-00000002"
    shutil.copytree(unbroken.out_dir / "checkpoints" / "step-00000002", stopped)
    resumed = train_stage(config.model_copy(update={"out_dir": tmp_path / "resumed"}))
    for name, value in transformer_weights(resumed.model_dir).items():
        torch.testing.assert_close(value, exported[name])


def test_a_moving_average_cannot_resume_from_a_checkpoint_without_one(stages, tmp_path):
    config = motion_stage_stopped_at_step_2(stages, tmp_path).model_copy(update={"ema_decay": 0.9})
    with pytest.raises(ValueError, match="ema_decay: .* holds no averaged weights"):
        train_stage(config)


class RunsCodeWhenUnpickled:
    """Pickles to a call of ``os.mkdir(marker)``: what a plain unpickler would run on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def plant_code(checkpoint_file: Path, marker: Path) -> None:
    """Overwrite a checkpoint's torch file with a pickle that would make the folder ``marker`` on load."""
    torch.save({"state": RunsCodeWhenUnpickled(marker)}, checkpoint_file)


def test_code_planted_in_a_checkpoints_optimizer_state_stops_the_resume_unrun(stages, tmp_path):
    config, marker = motion_stage_stopped_at_step_2(stages, tmp_path), tmp_path / "code-ran"
    plant_code(config.out_dir / "checkpoints" / "step-00000002" / "optimizer.bin", marker)
    with pytest.raises(pickle.UnpicklingError, match="mkdir"):  # accelerate loads it with weights_only=True
        train_stage(config)
    assert not marker.exists()


def test_code_planted_in_a_checkpoints_rng_state_never_runs(stages, tmp_path):
    config, marker = motion_stage_stopped_at_step_2(stages, tmp_path), tmp_path / "code-ran"
    plant_code(config.out_dir / "checkpoints" / "step-00000002" / "random_states_0.pkl", marker)
    # accelerate refuses it too, logs "Could not load random states" and goes on; every random draw
    # of training is seeded by (seed, step), so the resumed run does not need those states.
    assert train_stage(config).final_step == 4
    assert not marker.exists()


def test_content_exports_the_inference_model_with_motion_removed_and_content_kept(stages):
    content, base = stages["content"], stages["base"]
    assert (content.model_dir / "transformer" / "config.json").is_file()
    assert (content.adapter_dir / "pytorch_lora_weights.safetensors").is_file()
    assert not any("lora" in k for k in transformer_weights(content.model_dir))  # content LoRA fused in
    # The exported model computes what the base model with the content adapter alone computes.
    exported = LayerFlowPipeline.from_pretrained(content.model_dir).transformer.eval()
    reference = LayerFlowPipeline.from_pretrained(base.model_dir).transformer.eval()
    lora.load_adapter(reference, content.adapter_dir, lora.CONTENT)
    g = torch.Generator().manual_seed(0)
    video, text = torch.randn(1, 16, 48, 4, 4, generator=g), torch.randn(1, 3, 8, 32, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(exported(video, text, torch.tensor([500.0])).sample,
                                   reference(video, text, torch.tensor([500.0])).sample, atol=1e-5, rtol=1e-4)


def test_content_run_measures_the_motion_lora(stages):
    metrics = stages["content"].metrics
    assert metrics["motion_check.static_change"] >= 0 and metrics["motion_check.free_change"] >= 0
    assert metrics["motion_check.ratio"] == pytest.approx(
        metrics["motion_check.free_change"] / metrics["motion_check.static_change"])


def test_batches_follow_the_task_mixture_and_content_batches_are_of_one_kind(data, tmp_path, capsys):
    config = StageConfig(stage="content", data=[data["static"], data["moving"]], out_dir=tmp_path,
                         init_from=Path("base"), motion_adapter=Path("motion"), task_mixture=TaskMixture(
                             generate=0, decompose=1, fill_background=0, fill_foreground=0), **TINY)
    pipe = stage_pipeline(StageConfig(stage="base", data=[data["moving"]], out_dir=tmp_path, **TINY), load_model_config("tiny"))
    cache, _ = load_or_build_cache(pipe, config.data, load_model_config("tiny"), tmp_path / "cache")
    assert cache.latents.shape == (12, 16, 48, 4, 4)  # 6 frozen + 6 moving; 4 sub-clips x 4 frames
    progress = capsys.readouterr().err  # the encoding's progress bar, counted against the manifests
    assert "encoding the latent cache: 100%" in progress and "12/12" in progress
    pools = sample_pools(cache, config)
    kinds = []
    for step in range(20):
        batch = draw_batch(cache, pools, config, text_dropout=0.1, rng=batch_rng(0, step))
        assert batch.task == Task.DECOMPOSE
        assert batch.given_frames[0].tolist() == [False] * 12 + [True] * 4  # the blend is given
        moving = np.abs(np.diff(batch.latents.numpy(), axis=1)[:, :3]).max(axis=(1, 2, 3, 4)) > 0
        assert moving.tolist() == [not batch.static] * config.batch_size  # every sample of the batch's kind
        kinds.append(batch.static)
    assert set(kinds) == {True, False}
