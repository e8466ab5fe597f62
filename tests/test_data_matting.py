"""rembg matting works offline from the installed u2netp file and never downloads."""

import shutil

import numpy as np
import pytest

from data_recipes.fetch_u2netp import MD5, default_model_dir, fetch_u2netp, md5_of
from data_recipes.matting import Matter, binarise
from layerflow_model.video_io import read_frames_folder


def test_u2netp_is_installed_with_the_expected_checksum():
    assert md5_of(default_model_dir() / "u2netp.onnx") == MD5


def test_fetch_is_a_no_op_when_the_file_is_already_there(tmp_path):
    shutil.copy(default_model_dir() / "u2netp.onnx", tmp_path / "u2netp.onnx")
    assert fetch_u2netp(tmp_path) == tmp_path / "u2netp.onnx"  # would need the network otherwise


def test_matte_finds_the_person_in_a_davis_frame(layerflow_samples):
    lucia = layerflow_samples / "DAVIS/480p/lucia"
    frame = read_frames_folder(lucia / "bl").rgb[0]
    truth = read_frames_folder(lucia / "mask").rgb[0, ..., 0] > 0.5
    alpha = Matter("u2netp").matte(frame)
    assert alpha.shape == frame.shape[:2] and alpha.dtype == np.float32
    found = binarise(alpha) > 0
    assert (found & truth).sum() / (found | truth).sum() > 0.7


def test_a_model_that_is_not_on_disk_is_refused_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        Matter("u2netp")
    with pytest.raises(ValueError, match="not a rembg model"):
        Matter("no-such-model")
