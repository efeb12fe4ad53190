"""Progressively grown generator and discriminator (Karras et al. 2017, https://arxiv.org/abs/1710.10196).

Every resolution's layers exist from the start (so a checkpoint has the same objects at
every step); `set_stage(resolution, fading)` picks the sub-graph that `call` runs: the
blocks up to `resolution` and, while `fading`, the linear blend with the previous
resolution's path weighted by the network's `alpha` variable. Pure Keras 3.
"""
import keras

from keras_pgen.layers import FadeIn
from keras_pgen.networks import blocks
from keras_pgen.networks.base import SubclassedModel, penultimate_model


def _sub_model(input_shape, build, name):
    """A small functional model `build(Input(input_shape))` (one piece of a growing network)."""
    x = keras.Input(input_shape)
    return keras.Model(x, build(x), name=name)


def _upsample(x):
    return keras.ops.repeat(keras.ops.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x):
    return keras.ops.average_pool(x, 2, strides=2, padding="valid")


def _strip_base(resolutions, resolution, strips, min_rows):
    """The highest resolution computed whole when the image is made in `strips` strips (see `_call_in_strips`).

    The blocks above it are tiled: those whose strips have at least `min_rows` rows (fewer rows
    would spend too much on the halo); 4x4 (the dense stem) is never tiled. `resolution`
    itself when there is nothing to tile.
    """
    if strips <= 1:
        return resolution
    if resolution % strips:
        raise ValueError(f"strips must divide the resolution {resolution}, got {strips}")
    whole = [r for r in resolutions if r <= resolution and (r == 4 or r // strips < min_rows)]
    return whole[-1]


class _Growing(SubclassedModel):
    """Shared stage logic: the current sub-graph (a Python choice) and the fade-in weight (a variable)."""

    def _init_growing(self, resolution):
        self.resolution = resolution
        self.resolutions = blocks.resolutions(resolution)
        self.alpha = self.add_weight(name="alpha", shape=(), initializer="ones", trainable=False,
                                     aggregation="only_first_replica")
        self.fade_in = FadeIn()
        self.stage_resolution, self.stage_fading = resolution, False
        self.built = True

    def set_stage(self, resolution, fading=False):
        """Chooses the sub-graph `call` runs; freezes every layer it does not use.

        Args:
            resolution: int, a power of two from 4 to the final resolution.
            fading: bool. Blend with the resolution below using `alpha` (not at 4x4).

        Returns:
            bool: whether the stage changed (a traced train step must be retraced).
        """
        if resolution not in self.resolutions:
            raise ValueError(f"stage resolution must be one of {self.resolutions}, got {resolution}")
        fading = bool(fading) and resolution > 4
        changed = (resolution, fading) != (self.stage_resolution, self.stage_fading)
        self.stage_resolution, self.stage_fading = resolution, fading
        used = {id(layer) for layer in self.stage_layers(resolution, fading)}
        for layer in self.growing_layers():
            layer.trainable = id(layer) in used
        return changed

    def _resolve(self, resolution, alpha):
        """(resolution, alpha or None): explicit arguments win; otherwise the stage and the alpha variable."""
        if resolution is None:
            return self.stage_resolution, (self.alpha if self.stage_fading else None)
        if resolution not in self.resolutions:
            raise ValueError(f"resolution must be one of {self.resolutions}, got {resolution}")
        return resolution, (alpha if resolution > 4 else None)


@keras.saving.register_keras_serializable(package="keras_pgen")
class ProGANGenerator(_Growing):
    """ProGAN generator: z -> image at the current stage's resolution, grown from 4x4.

    Pixel-normalised z, a dense 4x4 stem and a conv3x3, then per resolution a nearest
    2x upsample and two conv3x3 (equalized learning rate, LeakyReLU 0.2, pixel norm
    after each; the upsample is fused into the first conv, `UpscaleConv2D`), and a
    linear 1x1 toRGB per resolution. While a resolution fades in, the
    output is `FadeIn([upsample(toRGB_{r/2}(h_{r/2})), toRGB_r(h_r)], alpha)`.

    Args:
        latent_dim: int. Size of z.
        resolution: int. Final resolution, a power of two from 4 to 1024.
        fmap_base: int, default 8192. Channels at resolution r follow
            min(fmap_max, fmap_base / 2**(log2(r) - 1)).
        fmap_max: int, default 512.
        image_channels: int, default 3.

    Call: `generator(z)` runs the current stage (`set_stage`, `alpha`);
    `generator(z, resolution=r, alpha=a)` runs resolution r blended with weight a
    (alpha None: no blend). `strips=n` computes the blocks whose n strips have at least
    `strip_min_rows` (64) rows strip by strip: the same image with a fraction of the peak
    activation memory (the export uses it at 1024x1024).

    Example:
    >>> g = ProGANGenerator(latent_dim=16, resolution=16, fmap_base=64, fmap_max=32)
    >>> g.set_stage(8, fading=True); g.alpha.assign(0.5)
    >>> g(keras.random.normal((2, 16))).shape  # (2, 8, 8, 3)

    Reference: Karras et al., Progressive Growing of GANs, https://arxiv.org/abs/1710.10196 (table 2).
    """

    def __init__(self, latent_dim, resolution, fmap_base=8192, fmap_max=512, image_channels=3, **kwargs):
        super().__init__(**kwargs)
        nf = lambda r: blocks.num_filters(r, fmap_base, fmap_max)  # noqa: E731
        self._store_args(latent_dim=latent_dim, resolution=resolution, fmap_base=fmap_base,
                         fmap_max=fmap_max, image_channels=image_channels)
        self.latent_dim = latent_dim
        res = blocks.resolutions(resolution)
        self.stem = _sub_model((latent_dim,), lambda z: blocks.generator_stem(z, nf(4)), "g4")
        for r in res[1:]:
            block = lambda x, r=r: blocks.upscale_generator_block(x, nf(r), name=f"g{r}")  # noqa: E731
            setattr(self, f"block_{r}", _sub_model((None, r // 2, nf(r // 2)), block, f"g{r}"))
        for r in res:
            setattr(self, f"to_rgb_{r}", _sub_model((None, r, nf(r)),
                                                    lambda x, r=r: blocks.to_rgb(x, image_channels, name=f"to_rgb_{r}"),
                                                    f"to_rgb_{r}"))
        self._init_growing(resolution)

    def growing_layers(self):
        res = self.resolutions
        return ([self.stem] + [getattr(self, f"block_{r}") for r in res[1:]]
                + [getattr(self, f"to_rgb_{r}") for r in res])

    def stage_layers(self, resolution, fading):
        used = [self.stem] + [getattr(self, f"block_{r}") for r in self.resolutions[1:] if r <= resolution]
        used.append(getattr(self, f"to_rgb_{resolution}"))
        if fading:
            used.append(getattr(self, f"to_rgb_{resolution // 2}"))
        return used

    def call(self, z, resolution=None, alpha=None, training=None, strips=1, strip_min_rows=64):
        resolution, alpha = self._resolve(resolution, alpha)
        base = _strip_base(self.resolutions, resolution, strips, strip_min_rows)
        if base < resolution:
            return self._call_in_strips(z, resolution, alpha, training, strips, base)
        x = self.stem(z, training=training)
        previous = x
        for r in self.resolutions[1:]:
            if r > resolution:
                break
            previous = x
            x = getattr(self, f"block_{r}")(x, training=training)
        images = getattr(self, f"to_rgb_{resolution}")(x, training=training)
        if alpha is None:
            return images
        old = _upsample(getattr(self, f"to_rgb_{resolution // 2}")(previous, training=training))
        return self.fade_in([old, images], alpha=alpha)

    def _call_in_strips(self, z, resolution, alpha, training, strips, base):
        """`call` with the blocks above `base` computed in `strips` horizontal strips (same result).

        Every layer above 4x4 is local (3x3 and 1x1 convolutions, per-pixel bias, LeakyReLU and
        pixel norm): output rows [a, b) of a block need only input rows [a // 2 - 1, ceil(b / 2) + 1)
        (clipped to the image; a conv's zero padding at the image border is the true one), so each
        strip is computed from a window of the full `base` features through the tiled blocks, and
        the rows its halo adds are cropped (`_strip_plan`). At 1024x1024 the largest live
        activation shrinks from 64 MB to a strip's share. The fade-in's old path upsamples rows
        [a // 2, ceil(b / 2)) of the previous resolution.

        The strips whose plans are the same up to where their windows start (all but the first
        and last, whose halos the image border clips) run as ONE loop body (`keras.ops.scan`,
        one strip after the other), so the graph holds three copies of the tiled blocks
        whatever the number of strips: a smaller graph to load and run (README, "Measured").
        """
        x = self.stem(z, training=training)
        for r in self.resolutions[1:]:
            if r > base:
                break
            x = getattr(self, f"block_{r}")(x, training=training)
        step = resolution // strips
        plans = [_strip_plan(resolution, base, a, a + step, alpha is not None) for a in range(0, resolution, step)]
        shapes = [[path[1:] for path in plan] for plan in plans]  # a plan without where its windows start
        first = last = strips // 2  # the strip farthest from the borders, and its neighbours of the same shape
        while first > 1 and shapes[first - 1] == shapes[last]:  # strip 0 stays out: its output is the scan's carry
            first -= 1
        while last < strips - 1 and shapes[last + 1] == shapes[first]:
            last += 1
        looped = list(range(first, last + 1)) if last > first else []  # else every strip is written out

        def strip(starts, plan):
            return self._strip(x, starts, plan, resolution, step, alpha, training)

        outputs = [strip([path[0] for path in plans[i]], plans[i]) for i in range(strips) if i not in looped]
        if looped:
            plan = plans[looped[0]]
            starts = keras.ops.convert_to_tensor([[path[0] for path in plans[i]] for i in looped], "int32")
            # one strip after the other; the carry is unused (Keras' TF scan wants it shaped like a strip)
            _, middle = keras.ops.scan(
                lambda carry, s: (carry, strip([s[j] for j in range(len(plan))], plan)), outputs[0], starts)
            middle = keras.ops.transpose(middle, (1, 0, 2, 3, 4))  # [N, strips looped, step, W, C]
            outputs.insert(looped[0], keras.ops.reshape(middle, (-1, len(looped) * step) + tuple(middle.shape[3:])))
        return keras.ops.concatenate(outputs, axis=1)

    def _strip(self, x, starts, plan, resolution, step, alpha, training):
        """One strip's `step` image rows from windows of the `base` features `x` starting at `starts` (ints or tensors)."""
        paths = []
        for start, (_, top, length, crops) in zip(starts, plan):
            y = keras.ops.slice(x, (0, start, 0, 0), (keras.ops.shape(x)[0], length) + tuple(x.shape[2:]))
            for r, (a, b) in crops:
                y = getattr(self, f"block_{r}")(y, training=training)[:, a:b]
            paths.append((top, y))
        images = getattr(self, f"to_rgb_{resolution}")(paths[0][1], training=training)
        if alpha is None:
            return images
        top, previous = paths[1]
        old = _upsample(getattr(self, f"to_rgb_{resolution // 2}")(previous, training=training))[:, top:top + step]
        return self.fade_in([old, images], alpha=alpha)


def _strip_plan(resolution, base, a, b, fading):
    """Which rows one strip, rows [a, b) of the image, needs (Python ints; see `_call_in_strips`).

    Returns a list with one entry per image path (the new one; also the old one while
    `fading`): `(start, top, length, crops)`. The path needs rows [start, start + length) of
    the `base` features; `crops` lists, per tiled resolution r from the lowest up, `(r, (i, j))`:
    the rows of block r's output it keeps; `top` is the row of the old path's upsampled
    output where the strip begins (0 for the new path).
    """
    def need(r, lo, hi, crops):  # rows [lo, hi) of block r's output
        if r == base:
            return lo, hi - lo, tuple(crops)
        below_lo, below_hi = max(0, lo // 2 - 1), min(r // 2, (hi + 1) // 2 + 1)
        return need(r // 2, below_lo, below_hi, [(r, (lo - 2 * below_lo, hi - 2 * below_lo))] + crops)

    start, length, crops = need(resolution, a, b, [])
    paths = [(start, 0, length, crops)]
    if fading:
        lo, hi = a // 2, (b + 1) // 2
        start, length, crops = need(resolution // 2, lo, hi, [])
        paths.append((start, a - 2 * lo, length, crops))
    return paths


@keras.saving.register_keras_serializable(package="keras_pgen")
class ProGANDiscriminator(_Growing):
    """ProGAN discriminator: image at the current stage's resolution -> one logit.

    fromRGB (1x1 conv + LeakyReLU) at the input resolution, then per resolution two
    conv3x3 and a 2x2 average pool down to 4x4, where the head adds the minibatch
    standard deviation, a conv3x3, a conv4x4 (valid) and a linear dense to one logit.
    While a resolution r fades in, the features entering the r/2 block are
    `FadeIn([fromRGB_{r/2}(avgpool(x)), block_r(fromRGB_r(x))], alpha)`.

    Args:
        resolution: int. Final resolution, a power of two from 4 to 1024.
        fmap_base: int, default 8192.
        fmap_max: int, default 512.
        image_channels: int, default 3.
        mbstd_group_size: int, default 4 (0 disables the minibatch stddev).

    Call: `discriminator(images)` runs the current stage; `discriminator(images,
    resolution=r, alpha=a)` an explicit one.

    Example:
    >>> d = ProGANDiscriminator(resolution=16, fmap_base=64, fmap_max=32)
    >>> d.set_stage(8); d(keras.ops.zeros((4, 8, 8, 3))).shape  # (4, 1)

    Reference: Karras et al., Progressive Growing of GANs, https://arxiv.org/abs/1710.10196 (table 2).
    """

    def __init__(self, resolution, fmap_base=8192, fmap_max=512, image_channels=3, mbstd_group_size=4, **kwargs):
        super().__init__(**kwargs)
        nf = lambda r: blocks.num_filters(r, fmap_base, fmap_max)  # noqa: E731
        self._store_args(resolution=resolution, fmap_base=fmap_base, fmap_max=fmap_max,
                         image_channels=image_channels, mbstd_group_size=mbstd_group_size)
        res = blocks.resolutions(resolution)
        for r in res:
            setattr(self, f"from_rgb_{r}", _sub_model((r, r, image_channels),
                                                      lambda x, r=r: blocks.from_rgb(x, nf(r), name=f"from_rgb_{r}"),
                                                      f"from_rgb_{r}"))
        for r in res[1:]:
            setattr(self, f"block_{r}", _sub_model(
                (r, r, nf(r)), lambda x, r=r: blocks.discriminator_block(x, nf(r), nf(r // 2), name=f"d{r}"), f"d{r}"))
        self.head = _sub_model((4, 4, nf(4)), lambda x: blocks.discriminator_head(x, nf(4), mbstd_group_size), "d4")
        self._init_growing(resolution)

    def growing_layers(self):
        res = self.resolutions
        return ([getattr(self, f"from_rgb_{r}") for r in res] + [getattr(self, f"block_{r}") for r in res[1:]]
                + [self.head])

    def stage_layers(self, resolution, fading):
        used = [getattr(self, f"from_rgb_{resolution}"), self.head]
        used += [getattr(self, f"block_{r}") for r in self.resolutions[1:] if r <= resolution]
        if fading:
            used.append(getattr(self, f"from_rgb_{resolution // 2}"))
        return used

    def call(self, images, resolution=None, alpha=None, training=None):
        return self.head(self._trunk(images, resolution, alpha, training), training=training)

    def penultimate(self, images, resolution=None, alpha=None, training=None):
        """What the head's logit layer sees (flattened), for the same arguments as `call`."""
        x = self._trunk(images, resolution, alpha, training)
        return penultimate_model(self.head)(x, training=training)

    def _trunk(self, images, resolution, alpha, training):
        """fromRGB and the blocks down to 4x4 (with the fade-in): the head's input."""
        resolution, alpha = self._resolve(resolution, alpha)
        x = getattr(self, f"from_rgb_{resolution}")(images, training=training)
        if resolution > 4:
            x = getattr(self, f"block_{resolution}")(x, training=training)
            if alpha is not None:
                old = getattr(self, f"from_rgb_{resolution // 2}")(_downsample(images), training=training)
                x = self.fade_in([old, x], alpha=alpha)
        for r in reversed(self.resolutions[1:]):
            if r < resolution:
                x = getattr(self, f"block_{r}")(x, training=training)
        return x
