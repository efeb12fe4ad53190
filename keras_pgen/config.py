"""Configs: the shared training fields, preset lookup and `--config.KEY=VALUE` overrides."""
import ast
import importlib
import importlib.util
import os

import ml_collections


def base_config():
    """Fields every method shares (data, schedule, logging, export). Methods add their own."""
    c = ml_collections.ConfigDict()
    c.method = ""
    c.preset = ""
    # data
    c.data = "shapes"  # folder, glob, zip, mnist/fashion_mnist/cifar10, tfds:NAME, patches:PATH, shapes
    c.resolution = 32
    c.channels = 3
    c.resize_mode = "crop"  # crop | pad | stretch
    c.flip = True
    c.num_images = 0  # size of virtual sources (shapes, patches); 0 = default
    # schedule
    c.batch_size = 32  # global batch, split across replicas
    c.total_steps = 1000
    c.seed = 0
    # logging, checkpoints, export
    c.log_every = 50  # steps per Keras "epoch": progress bar line and TensorBoard scalars
    c.sample_every = 250
    c.num_samples = 16
    c.checkpoint_every = 250
    c.keep_checkpoints = 3
    c.export = True
    c.export_dir = "saved_models"
    c.export_name = ""  # default: the method name
    # execution
    c.strategy = "auto"  # auto | default | mirrored
    c.jit_compile = False
    return c


def gan_config():
    """Base config plus the fields of the shared GAN template."""
    c = base_config()
    c.latent_dim = 128
    c.loss = "ra_hinge"  # ra_hinge | ns | hinge | wgan_gp
    c.gp_weight = 10.0
    c.r1_gamma = 0.0
    c.drift_weight = 0.0
    c.ema_decay = 0.999
    c.g_lr = 0.003
    c.d_lr = 0.003
    c.beta_1 = 0.0
    c.beta_2 = 0.99
    c.adam_epsilon = 1e-8  # as in the ProGAN / MSG-GAN reference code
    return c


def _config_module(method):
    """configs/<method>.py: the installed `keras_pgen.configs` package, else the source checkout's folder."""
    try:
        return importlib.import_module(f"keras_pgen.configs.{method}")
    except ModuleNotFoundError:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", f"{method}.py")
        if not os.path.exists(path):
            raise
        spec = importlib.util.spec_from_file_location(f"keras_pgen_configs_{method}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def get_config(method, preset="default"):
    """The ConfigDict of `configs/<method>.py` for `preset` (ValueError naming the choices)."""
    from keras_pgen import registry

    registry.check_method(method)
    module = _config_module(method)
    config = module.get_config(preset)
    config.method = method
    config.preset = preset
    return config


def _parse_value(text, current):
    if isinstance(current, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"expected a boolean (true/false), got {text!r}")
    if isinstance(current, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ValueError(f"expected a {type(current).__name__}, got {text!r}") from None
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    if type(value) is not type(current):
        raise ValueError(f"expected a {type(current).__name__}, got {text!r}")
    return value


def apply_overrides(config, overrides):
    """Applies ["key=value", "a.b=value", ...] to `config`, typed like the existing field.

    Raises:
        ValueError: one line naming the unknown key (with the valid keys) or the
            key whose value has the wrong type.
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"config override {item!r} is not KEY=VALUE")
        parts = key.split(".")
        parent = config
        for part in parts[:-1]:
            if part not in parent or not isinstance(parent[part], ml_collections.ConfigDict):
                raise ValueError(f"unknown config key {key!r}")
            parent = parent[part]
        leaf = parts[-1]
        if leaf not in parent:
            raise ValueError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(parent.keys()))}")
        try:
            parent[leaf] = _parse_value(text, parent[leaf])
        except (ValueError, TypeError) as e:
            raise ValueError(f"config key {key!r}: {e}") from None
    return config
