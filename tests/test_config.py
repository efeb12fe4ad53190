"""Configs, presets, overrides and the method registry."""
import pytest

import keras_pgen
from keras_pgen import config as config_lib
from keras_pgen import registry


@pytest.mark.parametrize("method", sorted(registry.METHODS))
def test_every_method_has_a_default_and_tiny_preset(method):
    tiny = keras_pgen.get_config(method, "tiny")
    default = keras_pgen.get_config(method, "default")
    assert tiny.method == default.method == method
    assert tiny.total_steps < default.total_steps and tiny.resolution <= default.resolution


def test_unknown_method_and_preset():
    with pytest.raises(ValueError, match=r"unknown method 'x'; choose from \['cond_decoder', 'deepsim', 'gan', 'msg_gan'"):
        keras_pgen.get_config("x")
    with pytest.raises(ValueError, match=r"unknown preset 'x' for msg_gan; choose from \['default', 'tiny'"):
        keras_pgen.get_config("msg_gan", "x")


def test_overrides_are_typed_like_the_field():
    c = keras_pgen.get_config("msg_gan", "tiny")
    config_lib.apply_overrides(c, ["resolution=32", "g_lr=1e-4", "d_lr=1", "flip=false", "data=/x/*.png",
                                   "export=True"])
    assert (c.resolution, c.g_lr, c.d_lr, c.flip, c.data, c.export) == (32, 1e-4, 1.0, False, "/x/*.png", True)
    assert isinstance(c.d_lr, float)


@pytest.mark.parametrize("override,message", [
    ("nope=1", "unknown config key 'nope'; valid keys: "),
    ("resolution=abc", "config key 'resolution': expected a int, got 'abc'"),
    ("resolution=1.5", "config key 'resolution': expected a int, got '1.5'"),
    ("flip=maybe", "config key 'flip': expected a boolean"),
    ("resolution", "is not KEY=VALUE"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ValueError) as info:
        config_lib.apply_overrides(keras_pgen.get_config("msg_gan", "tiny"), [override])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_default_msg_gan_run_begun_with_zero_padding_resumes_only_with_its_own_padding(tmp_path):
    """The msg_gan default preset pads G by reflection, bench64 keeps zeros (the PyTorch peer's architecture).

    A default-preset run begun before the switch (config.json says `same`, a checkpoint exists) is refused
    before anything is built, in one message naming the change and the flag that resumes it; with that
    flag the resume has nothing to refuse.
    """
    import json
    import os

    from keras_pgen import runs

    config = keras_pgen.get_config("msg_gan")
    assert config.g_padding == "reflect" and keras_pgen.get_config("msg_gan", "bench64").g_padding == "same"
    before = json.loads(config.to_json())
    before["g_padding"] = "same"
    (tmp_path / "config.json").write_text(json.dumps(before))
    os.makedirs(tmp_path / "checkpoints")
    (tmp_path / "checkpoints" / "ckpt-500.npz").write_bytes(b"")
    with pytest.raises(ValueError) as error:
        runs.resume_changes(config, str(tmp_path))
    message = str(error.value)
    assert "g_padding: 'same' -> 'reflect'" in message and "(--config.g_padding=same)" in message
    assert "\n" not in message
    config.g_padding = "same"
    assert runs.resume_changes(config, str(tmp_path)) == ([], [])
