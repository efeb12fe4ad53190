"""Method name -> the module of keras_pgen.models that builds it. Unknown names fail loudly with the choices.

Each module has `build_model(config)` (call inside the strategy scope); modules are imported
on first use, so a method's dependencies load only when it runs.
"""
import importlib

METHODS = {
    "gan": "keras_pgen.models.dcgan",
    "msg_gan": "keras_pgen.models.msg_gan",
    "progan": "keras_pgen.models.progan",
    "vae": "keras_pgen.models.vae",
    "vae_gan": "keras_pgen.models.vae_gan",
    "deepsim": "keras_pgen.models.deepsim",
    "cond_decoder": "keras_pgen.models.cond_decoder",
    "pgen": "keras_pgen.models.pgen",
}


def check_method(name):
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")


def build_model(config):
    """Builds and compiles the method's keras.Model (call inside the strategy scope)."""
    check_method(config.method)
    return importlib.import_module(METHODS[config.method]).build_model(config)


def xla_gpu_flags(method):
    """XLA flags the method's module asks for on GPUs (`XLA_GPU_FLAGS`: work-arounds of XLA bugs), or ()."""
    check_method(method)
    return tuple(getattr(importlib.import_module(METHODS[method]), "XLA_GPU_FLAGS", ()))
