"""DiffAugment: differentiable colour, translation and cutout, with explicit random inputs.

Pure Keras 3 (keras.ops only, no TensorFlow import), like the rest of `layers/`: the ops
run under the JAX backend too, and every random number is an input. The GAN template
draws those numbers in the input pipeline (per sample, stateless, keyed on the global
sample index, `GAN.noise_spec`), so one and N replicas augment a global batch
identically, and a resumed run augments exactly as an uninterrupted one.

`diff_augment(images, draws, policy, probability)` applies the ops of `policy` to a
batch `images` [N, H, W, C] in [-1, 1] using `draws` [N, num_draws(policy, gated)], uniform
in [0, 1). Each op reads its own columns, in policy order:

    brightness  x + (u - 0.5)                                   1 draw
    saturation  (x - mean_c(x)) * 2u + mean_c(x)                1 draw
    contrast    (x - mean_hwc(x)) * (u + 0.5) + mean_hwc(x)     1 draw
    translation out[i, j] = x[i + t_h, j + t_w], zeros outside,  2 draws
                t = floor(u * (2s + 1)) - s, s = int(size * 0.125 + 0.5)
    cutout      a zeroed square of side c = int(size * 0.5 + 0.5) starting at
                row floor(u_h * (H + 1 - c % 2)) - c // 2 (likewise columns),
                clipped to the image                            2 draws

These are the formulas of the reference implementation (mit-han-lab/data-efficient-gans,
DiffAugment_tf.py), with its `tf.random` calls replaced by the draws. Policy names:
"color" (brightness, saturation, contrast), "translation", "cutout", or single op names.

Adaptive augmentation (ADA-style): with `probability=p`, each op of each sample is applied
only when its own extra "gate" draw is below p (one more column per op), as in
StyleGAN2-ADA; p = None applies every op to every sample (plain DiffAugment).

Reference: Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training",
https://arxiv.org/abs/2006.10738; Karras et al., "Training Generative Adversarial Networks
with Limited Data" (ADA), https://arxiv.org/abs/2006.06676.
"""
from keras import ops

POLICY_GROUPS = {"color": ("brightness", "saturation", "contrast"), "translation": ("translation",),
                 "cutout": ("cutout",)}
OP_DRAWS = {"brightness": 1, "saturation": 1, "contrast": 1, "translation": 2, "cutout": 2}
DEFAULT_POLICY = "color,translation,cutout"


def parse_policy(policy):
    """"color,translation,cutout" -> the tuple of op names (groups expanded); ValueError on unknown names."""
    names = []
    for part in (policy or "").replace(" ", "").split(","):
        if not part:
            continue
        if part in POLICY_GROUPS:
            names.extend(POLICY_GROUPS[part])
        elif part in OP_DRAWS:
            names.append(part)
        else:
            raise ValueError(f"unknown augmentation {part!r} in policy {policy!r}; "
                             f"choose from {sorted(POLICY_GROUPS) + sorted(OP_DRAWS)}")
    return tuple(names)


def num_draws(policy, gated=False):
    """Columns of `draws` that `diff_augment` reads for `policy` (one more per op when gated)."""
    return sum(OP_DRAWS[name] + int(gated) for name in parse_policy(policy))


def _per_sample(u, dtype):
    return ops.reshape(ops.cast(u, dtype), (-1, 1, 1, 1))


def brightness(images, u):
    """Adds u - 0.5 to every pixel of each image (u [N] uniform in [0, 1))."""
    return images + (_per_sample(u, images.dtype) - 0.5)


def saturation(images, u):
    """Scales each pixel's deviation from its channel mean by 2u."""
    mean = ops.mean(images, axis=-1, keepdims=True)
    return (images - mean) * (2.0 * _per_sample(u, images.dtype)) + mean


def contrast(images, u):
    """Scales each image's deviation from its mean (over H, W, C) by u + 0.5."""
    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) * (_per_sample(u, images.dtype) + 0.5) + mean


def _discrete(u, low, count):
    """floor(u * count) + low as int32, clipped to [low, low + count - 1] (u in [0, 1))."""
    return ops.clip(ops.cast(ops.floor(ops.cast(u, "float32") * count), "int32"), 0, count - 1) + low


def translation_shifts(u_h, u_w, height, width, ratio=0.125):
    """Integer shifts (t_h, t_w) [N] in [-s, s], s = int(size * ratio + 0.5), from uniform draws."""
    s_h, s_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    return _discrete(u_h, -s_h, 2 * s_h + 1), _discrete(u_w, -s_w, 2 * s_w + 1)


def _shift_matrices(shift, size, dtype="float32"):
    """[N, size, size] one-hot rows: row i selects position i + shift (none when outside)."""
    positions = ops.arange(size, dtype="int32")
    source = positions[None, :, None] + ops.reshape(ops.cast(shift, "int32"), (-1, 1, 1))
    return ops.cast(ops.equal(positions[None, None, :], source), dtype)


def translate(images, t_h, t_w):
    """out[n, i, j] = images[n, i + t_h[n], j + t_w[n]], zero where that falls outside.

    A product with one-hot shift matrices: differentiable, backend-agnostic, exact.
    """
    height, width = images.shape[1], images.shape[2]
    images = ops.einsum("nik,nkwc->niwc", _shift_matrices(t_h, height, images.dtype), images)
    return ops.einsum("njl,nilc->nijc", _shift_matrices(t_w, width, images.dtype), images)


def translation(images, u_h, u_w, ratio=0.125):
    """Random translation by up to `ratio` of the image size, zero padded (DiffAugment's)."""
    t_h, t_w = translation_shifts(u_h, u_w, images.shape[1], images.shape[2], ratio)
    return translate(images, t_h, t_w)


def cutout_boxes(u_h, u_w, height, width, ratio=0.5):
    """(start_h, start_w) [N] and the side (c_h, c_w) of the cutout squares (see the module docstring)."""
    c_h, c_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    start_h = _discrete(u_h, 0, height + 1 - c_h % 2) - c_h // 2
    start_w = _discrete(u_w, 0, width + 1 - c_w % 2) - c_w // 2
    return start_h, start_w, c_h, c_w


def cutout(images, u_h, u_w, ratio=0.5):
    """Zeroes a random square of side `ratio` * size in each image (DiffAugment's cutout)."""
    height, width = images.shape[1], images.shape[2]
    start_h, start_w, c_h, c_w = cutout_boxes(u_h, u_w, height, width, ratio)

    def inside(start, side, size):
        positions = ops.arange(size, dtype="int32")[None, :]
        start = ops.reshape(start, (-1, 1))
        return ops.logical_and(positions >= start, positions < start + side)

    box = ops.logical_and(inside(start_h, c_h, height)[:, :, None], inside(start_w, c_w, width)[:, None, :])
    return images * ops.cast(ops.logical_not(box), images.dtype)[..., None]


_OPS = {"brightness": brightness, "saturation": saturation, "contrast": contrast, "translation": translation,
        "cutout": cutout}


def diff_augment(images, draws, policy=DEFAULT_POLICY, probability=None):
    """Applies the ops of `policy` to `images` with the random inputs `draws`.

    Args:
        images: float tensor [N, H, W, C] in [-1, 1], or a list of them (a multi-scale
            pyramid: every scale gets the same draws, so the same colour change, the same
            translation and cutout relative to its size).
        draws: float tensor [N, num_draws(policy, probability is not None)], uniform in [0, 1).
        policy: str, default "color,translation,cutout".
        probability: None (apply every op) or a scalar tensor p in [0, 1]: each op of
            each sample is applied when its gate draw is below p (ADA-style).

    Returns:
        The augmented images (a list for a list), same shapes.

    Example:
    >>> u = keras.random.uniform((8, num_draws("color,cutout")))
    >>> out = diff_augment(images, u, "color,cutout")

    Reference: Zhao et al., https://arxiv.org/abs/2006.10738.
    """
    if isinstance(images, (list, tuple)):
        return [diff_augment(x, draws, policy, probability) for x in images]
    names = parse_policy(policy)
    gated = probability is not None
    expected = num_draws(policy, gated)
    if draws.shape[-1] is not None and draws.shape[-1] != expected:
        raise ValueError(f"policy {policy!r} needs {expected} draws per sample, got {draws.shape[-1]}")
    column = 0
    for name in names:
        args = [draws[:, column + i] for i in range(OP_DRAWS[name])]
        column += OP_DRAWS[name]
        augmented = _OPS[name](images, *args)
        if gated:
            apply = ops.reshape(draws[:, column] < probability, (-1, 1, 1, 1))
            column += 1
            augmented = ops.where(apply, augmented, images)
        images = augmented
    return images
