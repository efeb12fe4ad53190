"""ProGAN: progressive growing of GANs (Karras et al. 2017, https://arxiv.org/abs/1710.10196; seed 003).

Training goes through phases: 4x4, then for every higher resolution a transition
(the new blocks fade in, alpha rising linearly from 0 to 1) and a stabilisation
phase (alpha = 1). Each phase is one `Stage` of training.train, with its own batch
size and data resolution. All networks' variables exist from the start; a phase only
picks the sub-graph that `train_step` runs (`set_stage`) and freezes the rest, so one
optimizer per network holds Adam state for every variable once (no per-resolution
copies) and a checkpoint has the same objects at every step.

Resume: alpha is a pure function of the step counter and the phase boundaries
(`phase_alpha`), so a run restored anywhere, mid-fade-in included, continues exactly.
Optimizers: as in the paper's code (`reset_opt_for_new_lod`), the Adam moments and
iteration count of both optimizers are reset to zero at the start of every phase
(`start_stage`, also after a restore taken exactly at a phase start); within a phase
they are restored from the checkpoint.
"""
import collections
import math

import keras

from keras_pgen.layers import FadeIn
from keras_pgen.models.base import Stage
from keras_pgen.models.gan import GAN, compile_gan, gan_arguments
from keras_pgen.networks import blocks
from keras_pgen.networks.progan import ProGANDiscriminator, ProGANGenerator

Phase = collections.namedtuple("Phase", ["start_step", "end_step", "batch_size", "resolution", "fading"])
Phase.__doc__ = """Steps [start_step, end_step) at `resolution`; `fading`: alpha rises 0 -> 1 over the phase."""


def per_resolution(values, resolution, default):
    """values[i] belongs to resolution 4 * 2**i; the last value repeats; empty -> `default`."""
    values = list(values or ())
    if not values:
        return default
    return values[min(int(math.log2(resolution)) - 2, len(values) - 1)]


def progressive_schedule(final_resolution, total_steps, transition_images, stabilize_images, batch_sizes=(),
                         default_batch_size=16):
    """The phases of a progressive run, in steps.

    4x4 is trained for `stabilize_images`; every higher resolution r gets a transition
    of `transition_images` then a stabilisation of `stabilize_images`, each lasting
    ceil(images / batch_size(r)) steps (phases of 0 steps are left out). The final
    resolution's stabilisation lasts until `total_steps`.

    Args:
        final_resolution: int, a power of two >= 4.
        total_steps: int.
        transition_images: int. Real images shown while a resolution fades in (paper: 600k).
        stabilize_images: int. Real images shown per stabilisation phase (paper: 600k).
        batch_sizes: sequence of int, batch size per resolution from 4x4 up (last repeats).
        default_batch_size: int, used when `batch_sizes` is empty.

    Returns:
        list of `Phase`.
    """
    phases = []
    step = 0
    for r in blocks.resolutions(final_resolution):
        batch = int(per_resolution(batch_sizes, r, default_batch_size))
        for fading, images in ((True, transition_images), (False, stabilize_images)):
            if fading and r == 4:
                continue
            steps = math.ceil(images / batch)
            if r == final_resolution and not fading:
                steps = max(total_steps - step, 0)
            if steps > 0 or (r == final_resolution and not fading):
                phases.append(Phase(step, step + steps, batch, r, fading))
            step += steps
    return phases


def phase_alpha(phase, step):
    """Fade-in weight at `step` (Python number or tensor): (step - start) / length in a transition, else 1."""
    if not phase.fading:
        return 1.0 if isinstance(step, (int, float)) else keras.ops.ones((), "float32")
    length = float(phase.end_step - phase.start_step)
    if isinstance(step, (int, float)):
        return min(max((step - phase.start_step) / length, 0.0), 1.0)
    step = keras.ops.cast(step, "float32")
    return keras.ops.clip((step - float(phase.start_step)) / length, 0.0, 1.0)


class ProGAN(GAN):
    """Progressive GAN on the shared GAN template: growing networks, a phase schedule, fade-in of reals too.

    Args:
        generator: `ProGANGenerator`.
        discriminator: `ProGANDiscriminator` of the same final resolution.
        total_steps: int. Length of the run (the last phase ends there).
        transition_images, stabilize_images: int. See `progressive_schedule`.
        batch_sizes: sequence of int per resolution from 4x4 (empty: `batch_size`).
        batch_size: int, default 16.
        g_lrs, d_lrs: sequences of float, learning rate per resolution from 4x4 (empty:
            the optimizer's learning rate as compiled).
        export_jit_compile: bool, default False. Export the generator as an XLA-compiled
            function (`ServingGenerator`): ~1.8x faster on the CPU at 1024x1024 for whole
            images, no faster than the plain graph in strips, and ~190 MB more memory.
        export_strips: int, default 8. The exported generator computes its high-resolution
            blocks in this many horizontal strips (`ProGANGenerator(strips=...)`): the same
            image with a fraction of the activation memory. 1: whole images.
        **kwargs: the `GAN` template's (latent_dim, loss, gp_weight, drift_weight, ema_decay, ...).

    Example:
    >>> model = build_model(keras_pgen.get_config("progan", "tiny"))
    >>> model.prepare(5); model.scalars()  # {"progan/resolution": 8, "progan/alpha": ...}

    Reference: Karras et al., https://arxiv.org/abs/1710.10196.
    """

    export_images_per_call = 1  # the export generates image by image: a batch's peak memory is one image's

    def __init__(self, generator, discriminator, total_steps, transition_images, stabilize_images,
                 batch_sizes=(), batch_size=16, g_lrs=(), d_lrs=(), export_jit_compile=False, export_strips=8,
                 **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        if generator.resolution != discriminator.resolution:
            raise ValueError(f"generator resolution {generator.resolution} != discriminator resolution "
                             f"{discriminator.resolution}")
        self.final_resolution = generator.resolution
        self.total_steps = total_steps
        self.schedule_args = dict(transition_images=transition_images, stabilize_images=stabilize_images,
                                  batch_sizes=tuple(batch_sizes or ()), default_batch_size=batch_size)
        self.g_lrs, self.d_lrs = tuple(g_lrs or ()), tuple(d_lrs or ())
        self.phases = progressive_schedule(self.final_resolution, total_steps, **self.schedule_args)
        self.phase = None
        self.real_fade_in = FadeIn()
        self.export_jit_compile = bool(export_jit_compile)
        self.export_strips = int(export_strips)

    # ---- schedule ------------------------------------------------------------------------------
    def stages(self, total_steps, batch_size):
        self.phases = progressive_schedule(self.final_resolution, total_steps, **self.schedule_args)
        return [Stage(p.start_step, p.end_step, p.batch_size, p.resolution) for p in self.phases]

    def phase_at(self, step):
        """The phase training is in at `step` (the last one from its start on)."""
        return [p for p in self.phases if p.start_step <= step][-1]

    def alpha_at(self, step):
        """Fade-in weight at `step` (Python number, or tensor for a tensor step)."""
        return phase_alpha(self.phase_at(int(step)) if isinstance(step, int) else self.phase, step)

    def networks(self):
        return (self.generator, self.discriminator, self.ema_generator)

    def prepare(self, step):
        """Sets every network to the phase of `step` (sub-graph, frozen layers, alpha) and its learning rates."""
        phase = self.phase_at(int(step))
        changed = phase != self.phase
        for network in self.networks():
            changed |= network.set_stage(phase.resolution, phase.fading)
        self.phase = phase
        self.assign_alpha(float(phase_alpha(phase, int(step))))
        if hasattr(self, "g_optimizer"):
            for optimizer, lrs in ((self.g_optimizer, self.g_lrs), (self.d_optimizer, self.d_lrs)):
                if lrs:
                    optimizer.learning_rate.assign(per_resolution(lrs, phase.resolution, None))
        if changed:
            self.train_function = None  # Keras retraces train_step for the new sub-graph

    def start_stage(self, stage):
        """Grows to the phase starting at `stage.start_step` and resets both optimizers (see module doc)."""
        self.prepare(stage.start_step)
        for optimizer in (self.g_optimizer, self.d_optimizer):
            reset_optimizer_state(optimizer)

    def assign_alpha(self, alpha):
        for network in self.networks():
            network.alpha.assign(alpha)

    def scalars(self):
        return {"progan/resolution": self.phase.resolution, "progan/alpha": float(self.generator.alpha.numpy())}

    def export_generator(self):
        """The EMA generator at the current stage, in strips, XLA-compiled when `export_jit_compile` (see `ServingGenerator`)."""
        return ServingGenerator(self.ema_generator, jit_compile=self.export_jit_compile, strips=self._strips())

    def _strips(self):
        """`export_strips`, reduced to a divisor of the current resolution."""
        return math.gcd(self.export_strips, self.phase.resolution)

    def export_to(self, export_dir, name, metadata):
        """Exports the EMA generator at the current resolution and alpha (recorded in the metadata)."""
        extra = {"alpha": float(self.ema_generator.alpha.numpy()), "fading": self.phase.fading,
                 "final_resolution": self.final_resolution, "jit_compile": self.export_jit_compile,
                 "strips": self._strips()}
        return super().export_to(export_dir, name, {**metadata, **extra})

    # ---- training ------------------------------------------------------------------------------
    def real_inputs(self, images):
        """While fading in, reals are blended like the generator: lerp(upsample(avgpool(x)), x, alpha)."""
        if not self.phase.fading:
            return images
        low = keras.ops.average_pool(images, 2, strides=2, padding="valid")
        low = keras.ops.repeat(keras.ops.repeat(low, 2, axis=1), 2, axis=2)
        return self.real_fade_in([low, images], alpha=self.alpha_at(self.step))

    def train_updates(self, data):
        """The template's step with every network's alpha set from the step counter before and after."""
        self.assign_alpha(self.alpha_at(self.step))
        logs = super().train_updates(data)
        self.assign_alpha(self.alpha_at(self.step))  # the EMA copy and exports see alpha(step + 1)
        return logs


class ServingGenerator(keras.Model):
    """The generator as the SavedModel runs it: in strips, optionally XLA-compiled.

    - `strips`: the generator's high-resolution blocks run strip by strip
      (`ProGANGenerator(strips=...)`), the same image with a fraction of the activations.
    - `jit_compile`: the forward pass is one `tf.function(jit_compile=True)`; the SavedModel
      keeps its must-compile attribute, so TensorFlow (and TF Serving built with XLA) compiles
      it on first use. XLA fuses the element-wise work (bias, LeakyReLU, pixel norm) that
      dominates the low-channel 512x512 and 1024x1024 blocks.

    The export generates a batch image by image (`ProGAN.export_images_per_call`,
    `export.export_generator(images_per_call=...)`); the PNG encoder stays outside XLA.

    Args:
        generator: a built `ProGANGenerator`.
        jit_compile: bool, default True.
        strips: int, default 1.
    """

    def __init__(self, generator, jit_compile=True, strips=1, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.latent_dim = generator.latent_dim
        import tensorflow as tf  # the SavedModel's forward pass (exports only)

        self._forward = tf.function(lambda z: self.generator(z, training=False, strips=strips),
                                    jit_compile=bool(jit_compile), autograph=False)
        self.built = True

    def call(self, z, training=False):
        return self._forward(z)


def reset_optimizer_state(optimizer):
    """Zeros an optimizer's slots (Adam moments) and iteration count; keeps its learning rate.

    Under mixed precision only the wrapped Adam is reset: the loss scale carries over.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    keep = {id(optimizer.learning_rate)} if isinstance(optimizer.learning_rate, keras.Variable) else set()
    for variable in optimizer.variables:
        if id(variable) not in keep:
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))


def build_model(config):
    """ProGAN from a config of configs/progan.py (call inside the strategy scope), prepared for step 0."""
    net = dict(resolution=config.resolution, fmap_base=config.fmap_base, fmap_max=config.fmap_max,
               image_channels=config.channels)
    model = ProGAN(ProGANGenerator(config.latent_dim, **net),
                   ProGANDiscriminator(mbstd_group_size=config.mbstd_group_size, **net),
                   total_steps=config.total_steps, transition_images=config.transition_images,
                   stabilize_images=config.stabilize_images, batch_sizes=config.batch_sizes,
                   batch_size=config.batch_size, g_lrs=config.g_lrs, d_lrs=config.d_lrs,
                   export_jit_compile=config.get("export_jit_compile", False),
                   export_strips=config.get("export_strips", 8), **gan_arguments(config))
    compile_gan(model, config)
    model.prepare(0)
    return model
