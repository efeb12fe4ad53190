"""Equalized learning-rate layers (Karras et al. 2017, "Progressive Growing of GANs")."""
import math

import keras
from keras import ops


class _EqualizedMixin:
    """Shared weight creation: weights ~ N(0, 1/lr_multiplier), scaled at run time."""

    def _init_equalized(self, kernel_shape, fan_in, units):
        self.runtime_scale = self.gain / math.sqrt(fan_in) * self.lr_multiplier
        self.bias_scale = self.lr_multiplier
        self.kernel = self.add_weight(
            name="kernel",
            shape=kernel_shape,
            initializer=keras.initializers.RandomNormal(stddev=1.0 / self.lr_multiplier),
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(units,), initializer="zeros")

    def scaled_kernel(self):
        """The kernel as the layer applies it: `kernel * runtime_scale` (the kernel itself once folded)."""
        return self.kernel if self.runtime_scale == 1.0 else self.kernel * self.runtime_scale

    def _add_bias(self, x):
        if self.bias is None:
            return x
        return x + (self.bias if self.bias_scale == 1.0 else self.bias * self.bias_scale)

    def _equalized_config(self):
        return {"gain": self.gain, "use_bias": self.use_bias, "lr_multiplier": self.lr_multiplier}


@keras.saving.register_keras_serializable(package="keras_pgen")
class EqualizedDense(_EqualizedMixin, keras.layers.Layer):
    """Dense layer with equalized learning rate.

    The weights are drawn from N(0, 1) and multiplied at run time by
    `gain / sqrt(fan_in) * lr_multiplier`, so every weight learns at the same
    speed under Adam whatever its fan-in.

    Args:
        units: int. Output features.
        gain: float, default sqrt(2). He-style gain.
        use_bias: bool, default True.
        lr_multiplier: float, default 1. Learning-rate multiplier (StyleGAN's
            mapping network uses 0.01).

    Example:
    >>> y = EqualizedDense(8)(keras.ops.ones((2, 4)))

    Reference: Karras et al., https://arxiv.org/abs/1710.10196 (section 4.1).
    """

    def __init__(self, units, gain=math.sqrt(2.0), use_bias=True, lr_multiplier=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.gain = gain
        self.use_bias = use_bias
        self.lr_multiplier = lr_multiplier

    def build(self, input_shape):
        fan_in = input_shape[-1]
        self._init_equalized((fan_in, self.units), fan_in, self.units)

    def call(self, x):
        return self._add_bias(ops.matmul(x, self.scaled_kernel()))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, **self._equalized_config()}


PADDINGS = ("same", "valid", "reflect")


def mirror_pad(x, width, repeat_edge=False):
    """NHWC `x` with `width` rows and columns mirrored onto each side ("reflect"; with `repeat_edge`, "symmetric").

    Written as slices, flips and one concatenation per axis (plain ops on every backend, no
    MirrorPad op); the values equal `ops.pad(x, ..., mode="reflect" | "symmetric")` (tested).
    """
    skip = 0 if repeat_edge else 1
    for axis in (1, 2):
        size = x.shape[axis]

        def rows(start, stop, axis=axis):
            index = [slice(None)] * 4
            index[axis] = slice(start, stop)
            return ops.flip(x[tuple(index)], axis=axis)

        x = ops.concatenate([rows(skip, skip + width), x, rows(size - skip - width, size - skip)], axis=axis)
    return x


@keras.saving.register_keras_serializable(package="keras_pgen")
class EqualizedConv2D(_EqualizedMixin, keras.layers.Layer):
    """2D convolution (NHWC, stride 1) with equalized learning rate.

    Args:
        filters: int. Output channels.
        kernel_size: int. Square kernel size.
        padding: str, default "same". "same" (zeros around the input), "valid" (none) or
            "reflect" (the input mirrored at its edges, then "valid": a "same"-sized output whose
            border pixels see image-like values instead of zeros; odd kernel sizes).
        gain: float, default sqrt(2).
        use_bias: bool, default True.
        lr_multiplier: float, default 1.

    Example:
    >>> y = EqualizedConv2D(8, 3)(keras.ops.ones((2, 16, 16, 3)))

    Reference: Karras et al., https://arxiv.org/abs/1710.10196 (section 4.1).
    """

    def __init__(self, filters, kernel_size, padding="same", gain=math.sqrt(2.0), use_bias=True,
                 lr_multiplier=1.0, **kwargs):
        super().__init__(**kwargs)
        if padding not in PADDINGS:
            raise ValueError(f"unknown padding {padding!r}; choose from {list(PADDINGS)}")
        self.filters = filters
        self.kernel_size = kernel_size
        self.padding = padding
        self.gain = gain
        self.use_bias = use_bias
        self.lr_multiplier = lr_multiplier

    def build(self, input_shape):
        cin = input_shape[-1]
        k = self.kernel_size
        self._init_equalized((k, k, cin, self.filters), k * k * cin, self.filters)

    def call(self, x):
        if self.padding == "reflect" and self.kernel_size > 1:
            x = mirror_pad(x, self.kernel_size // 2)
        padding = "same" if self.padding == "same" else "valid"
        y = ops.conv(x, self.scaled_kernel(), strides=1, padding=padding)
        return self._add_bias(y)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        if self.padding == "valid" and h is not None:
            h, w = h - self.kernel_size + 1, w - self.kernel_size + 1
        return (n, h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "padding": self.padding, **self._equalized_config()}


class folded_scales:  # noqa: N801 (a context manager used like a function)
    """`with folded_scales(network):` its equalized layers hold `kernel * scale` and run without the multiply.

    Equalized layers multiply their kernels by a constant at every call, so a graph traced
    from them keeps a scaled copy of every kernel alive next to the variable while it runs
    (all of them at once: nothing orders those multiplies after the data). For export, the
    constants are folded into the variables inside this block, so the traced graph reads
    the variables directly: the same outputs (to float rounding) with no per-call copies.
    On exit the exact original values and scales are restored, so training goes on as before.
    """

    def __init__(self, network):
        self.layers = [layer for layer in network._flatten_layers(include_self=False)
                       if isinstance(layer, _EqualizedMixin) and layer.built]

    def __enter__(self):
        self.saved = []
        for layer in self.layers:
            bias = None if layer.bias is None else layer.bias.numpy()
            self.saved.append((layer.kernel.numpy(), bias, layer.runtime_scale, layer.bias_scale))
            layer.kernel.assign(layer.kernel * layer.runtime_scale)
            if layer.bias is not None:
                layer.bias.assign(layer.bias * layer.bias_scale)
            layer.runtime_scale, layer.bias_scale = 1.0, 1.0
        return self

    def __exit__(self, *exc):
        for layer, (kernel, bias, scale, bias_scale) in zip(self.layers, self.saved):
            layer.kernel.assign(kernel)
            if bias is not None:
                layer.bias.assign(bias)
            layer.runtime_scale, layer.bias_scale = scale, bias_scale
        return False
