"""The per-sample draws of a training batch (noise, flips): names, keys and validation, shared by both engines.

Sample g's draws depend only on `(seed, name, g)`: the tf.data pipeline (data/pipeline.py)
draws them with TensorFlow's Philox, the JAX engine with `jax.random` keyed the same way.
"""
import hashlib

NOISE_DISTRIBUTIONS = ("normal", "uniform")
_RESERVED = ("images", "labels")
_FLIP = "__flip__"  # the per-sample draw that decides the horizontal flips


def _draw_specs(noise_spec, flip):
    """Validates `noise_spec`; returns `{name: (dist, shape, key)}`, plus `_FLIP` when flipping."""
    draws = {}
    for name, (dist, shape) in (noise_spec or {}).items():
        if name in _RESERVED or dist not in NOISE_DISTRIBUTIONS:
            raise ValueError(f"bad noise_spec entry {name!r}: ({dist!r}, {shape!r}); names must not be "
                             f"{_RESERVED}, distributions are {NOISE_DISTRIBUTIONS}")
        draws[name] = (dist, tuple(int(d) for d in shape), f"noise/{name}")
    if flip:
        draws[_FLIP] = ("uniform", (), "flip")
    return draws


def _key(seed, name):
    """A stable int64 derived from `(seed, name)`."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
