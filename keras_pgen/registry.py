"""Method name -> model builder. Unknown names fail loudly with the choices."""
from keras_pgen.models import dcgan, msg_gan

METHODS = {
    "gan": dcgan.build_model,
    "msg_gan": msg_gan.build_model,
}


def check_method(name):
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")


def build_model(config):
    """Builds and compiles the method's keras.Model (call inside the strategy scope)."""
    check_method(config.method)
    return METHODS[config.method](config)
