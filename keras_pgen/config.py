"""Configs: the shared training fields, preset lookup and `--config.KEY=VALUE` overrides."""
import ast
import importlib
import importlib.util
import math
import numbers
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
    c.jit_compile = False  # XLA for the train step
    c.mixed_precision = False  # mixed-precision compute, float32 variables, losses and perceptual features
    c.mixed_precision_dtype = "float16"  # float16 (loss-scaled; GPUs without bf16, e.g. T4) | bfloat16 (A100, H100)
    # KID/FID of the generator's samples against the data, logged to TensorBoard (keras_pgen/metrics)
    c.eval_every = 0  # steps between evaluations; 0 = off
    c.eval_num_samples = 1000  # generated and real images per evaluation
    # InceptionV3 weights: imagenet | file path | none (random); or pixels; or shapes (the built-in data's judge,
    # offline: kinds covered, confidence, FID/KID with real-vs-real floors); or auto (shapes when data is shapes, else off)
    c.eval_features = "imagenet"
    c.eval_image_size = 299  # InceptionV3 input side (>= 75; 299 for standard numbers)
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
    # small-data augmentation of everything the discriminator sees (layers/diffaugment.py)
    c.augment = "none"  # none | diffaugment | ada (DiffAugment ops with an adaptive probability)
    c.augment_policy = "color,translation,cutout"
    c.ada_target = 0.6  # target of mean(sign(D(real)))
    c.ada_interval = 4  # steps between adjustments of the ADA probability
    c.ada_kimg = 100.0  # thousands of images over which the probability can move by 1
    return c


def autoencoder_config():
    """Base config plus the fields of the autoencoder base (models/autoencoder.py).

    Shared by vae, vae_gan, deepsim and cond_decoder.
    """
    c = base_config()
    c.flip = False
    c.latent_dim = 64
    c.variational = True  # False: a plain (deterministic) autoencoder, no KL
    # networks (networks/autoencoder.py)
    c.base_filters = 32
    c.max_filters = 256
    c.convs_per_block = 1
    c.code_resolution = 0  # 0: flat code [latent_dim]; r: spatial code [r, r, latent_dim]
    c.upsample = "nearest"  # nearest | bilinear
    c.output_activation = "tanh"  # tanh | linear
    c.pixel_norm = False
    # reconstruction loss: pixel_weight * pixel + perceptual_weight * feature distance
    c.pixel_loss = "mse"  # mse | l1 | none
    c.pixel_weight = 1.0
    c.perceptual_weight = 0.0  # > 0 builds the comparator
    c.comparator = "vgg"  # vgg | random_conv (a frozen random Encoder's features); methods may add more
    c.vgg_weights = "imagenet"  # imagenet | /path/to/vgg16_..._notop.h5 | none (random)
    c.perceptual_layers = ("relu1_2", "relu2_2", "relu3_3")
    c.perceptual_layer_weights = ()  # () = 1 per layer
    c.perceptual_distance = "l2"  # l2 | l1 | gram
    c.comparator_filters = 32  # random_conv: channels of its first block
    # KL (variational only): kl_weight * min(1, step / kl_warmup_steps) * KL summed over the code
    c.kl_weight = 1e-3
    c.kl_warmup_steps = 0
    # optimizer (Adam)
    c.lr = 1e-3
    c.beta_1 = 0.9
    c.beta_2 = 0.999
    c.adam_epsilon = 1e-7
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


def before_fields(method):
    """{field: value} a run of `method` used before the field existed (configs/<method>.py's BEFORE_FIELDS)."""
    return dict(getattr(_config_module(method), "BEFORE_FIELDS", {}))


def field(config, key):
    """`config[key]`; for a config.json written before `key` existed, the value that run used."""
    return config[key] if key in config else before_fields(config.method)[key]


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


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_rate(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _min_resolution(config):
    return 8 if config.get("method") == "msg_gan" else 4  # MSG-GAN needs two scales (networks/msg_gan.py)


# (fields, requirement, check(value, config)): what `validate` checks where the config has the field.
_RULES = (
    (("total_steps", "batch_size", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
      "num_samples", "latent_dim", "eval_num_samples"), "an int >= 1", lambda v, c: _is_int(v) and v >= 1),
    (("num_images", "eval_every", "seed", "kl_warmup_steps"), "an int >= 0", lambda v, c: _is_int(v) and v >= 0),
    (("batch_sizes",), "a tuple of ints >= 1", lambda v, c: all(_is_int(b) and b >= 1 for b in v)),
    (("resolution",), "a power of two >= 4 (>= 8 for msg_gan: two scales)",
     lambda v, c: _is_int(v) and v >= _min_resolution(c) and v & (v - 1) == 0),
    (("channels",), "1 or 3", lambda v, c: _is_int(v) and v in (1, 3)),
    (("g_padding",), "'same' or 'reflect'", lambda v, c: v in ("same", "reflect")),
    (("lr", "g_lr", "d_lr"), "a finite number > 0", lambda v, c: _is_rate(v)),
    (("g_lrs", "d_lrs"), "a tuple of finite numbers > 0", lambda v, c: all(_is_rate(r) for r in v)),
    (("beta_1", "beta_2"), "a number in [0, 1)", lambda v, c: isinstance(v, numbers.Real) and 0 <= v < 1),
    (("ema_decay",), "a number in [0, 1]", lambda v, c: isinstance(v, numbers.Real) and 0 <= v <= 1),
    (("eval_image_size",), "an int >= 75 (InceptionV3's smallest input)",
     lambda v, c: _is_int(v) and (v >= 75 or c.get("eval_features") in ("pixels", "shapes", "auto"))),
    (("data", "export_dir"), "a non-empty string", lambda v, c: isinstance(v, str) and v.strip() != ""),
    (("export_name",), "a name without path separators ('' = the method)",
     lambda v, c: isinstance(v, str) and "/" not in v and os.sep not in v and v not in (".", "..")),
)


def validate(config):
    """Checks the shared fields of a training config before anything is loaded or built.

    Fields the config lacks (a method without them, a config.json written before them) are
    skipped. Returns `config`.

    Raises:
        ValueError: one line naming the first bad field, what it must be, and its value,
            e.g. "config.batch_size must be an int >= 1, got 0".
    """
    for fields, requirement, check in _RULES:
        for name in fields:
            if name in config:
                value = config[name]
                try:
                    ok = check(value, config)
                except TypeError:  # e.g. a number where a tuple belongs
                    ok = False
                if not ok:
                    raise ValueError(f"config.{name} must be {requirement}, got {value!r}")
    return config


def apply_overrides(config, overrides):
    """Applies ["key=value", "a.b=value", ...] to `config`, typed like the existing field, then `validate`s it.

    Raises:
        ValueError: one line naming the unknown key (with the valid keys), the
            key whose value has the wrong type, or the field `validate` rejects.
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
    return validate(config)
