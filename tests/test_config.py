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
