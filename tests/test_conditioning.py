"""Tasks are subsets of given layers; layers pack into the frame axis as fg, alpha, bg, blend."""

import numpy as np
import pytest
import torch

from layerflow_model import LayeredClip, PixelUnshuffleCodec
from layerflow_model.conditioning import (
    clip_to_video,
    decode_layers,
    encode_clips,
    encode_layers,
    frame_mask,
    given_layers_for,
    given_mask,
    video_to_clip,
)


def full_clip(seed=0, frames=2, size=8):
    rng = np.random.default_rng(seed)
    fg = rng.random((frames, size, size, 3), dtype=np.float32)
    alpha = (rng.random((frames, size, size)) > 0.5).astype(np.float32)  # binary: fg colour recoverable
    bg = rng.random((frames, size, size, 3), dtype=np.float32)
    return LayeredClip(fg=fg, alpha=alpha, bg=bg).with_blend()


def test_named_tasks_pick_their_layers():
    clip = full_clip()
    assert given_layers_for("generate", None) == ()
    assert given_layers_for("decompose", clip) == ("blend",)
    assert given_layers_for("fill_background", clip) == ("fg", "alpha")
    assert given_layers_for("fill_foreground", clip) == ("bg",)
    # Without a task, every layer the clip holds is given (the general form).
    assert given_layers_for(None, clip.subset("alpha", "bg")) == ("alpha", "bg")


def test_a_missing_layer_for_a_task_is_named():
    with pytest.raises(ValueError, match=r"task 'fill_background'.*missing \['alpha'\]"):
        given_layers_for("fill_background", full_clip().subset("fg", "bg"))
    with pytest.raises(ValueError, match="needs given layers"):
        given_layers_for("decompose", None)
    with pytest.raises(ValueError, match="unknown task 'matte'"):
        given_layers_for("matte", None)
    with pytest.raises(ValueError, match="foreground needs its alpha"):
        given_layers_for(None, full_clip().subset("fg"))


def test_masks_expand_from_layers_to_latent_frames():
    mask = given_mask(("blend",))
    assert mask.tolist() == [False, False, False, True]
    assert frame_mask(mask[None], 2).tolist() == [[False] * 6 + [True] * 2]


def test_layers_pack_in_paper_order_and_unpack():
    clip = full_clip()
    video = clip_to_video(clip)  # (4, T, 3, H, W) in [-1, 1]
    assert video.shape == (4, 2, 3, 8, 8) and video.min() >= -1 and video.max() <= 1
    # Foreground premultiplied over black; alpha grey on all three channels.
    np.testing.assert_allclose(((video[0] + 1) / 2).permute(0, 2, 3, 1).numpy(), clip.fg_premultiplied(), atol=1e-6)
    assert torch.equal(video[1, :, 0], video[1, :, 2])
    back = video_to_clip(video)
    for name in ("alpha", "bg", "blend"):
        np.testing.assert_allclose(getattr(back, name), getattr(clip, name), atol=1e-6)
    visible = clip.alpha > 0
    np.testing.assert_allclose(back.fg[visible], clip.fg[visible], atol=1e-5)


def test_each_layer_is_encoded_on_its_own():
    codec = PixelUnshuffleCodec(factor=4)
    video = torch.stack([clip_to_video(full_clip(s)) for s in range(2)])  # (B, 4, T, 3, H, W)
    latents = encode_layers(codec, video)
    assert latents.shape == (2, 4 * 2, 48, 2, 2)
    assert torch.equal(decode_layers(codec, latents), video)


def test_clips_encode_on_the_codec_device_in_its_dtype():
    codec = PixelUnshuffleCodec(factor=4).to(torch.float64)
    clips = [full_clip(s) for s in range(2)]
    latents = encode_clips(codec, clips)
    assert latents.dtype == torch.float64 and latents.device == codec.device
    video = torch.stack([clip_to_video(c) for c in clips]).double()  # (B, 4, T, 3, H, W)
    assert torch.equal(latents, encode_layers(codec, video))
