"""--config.mixed_precision=true: float16 compute, float32 variables and losses, loss scaling saved on resume."""
import keras
import numpy as np
import pytest

import keras_pgen


def optimizer_state(model):
    return {f"{name}:{i}:{v.name}": np.asarray(v) for name, opt in model.optimizers().items()
            for i, v in enumerate(opt.variables)}


@pytest.mark.parametrize("method", ["msg_gan", "vae"])
def test_mixed_precision_steps_are_finite_and_the_loss_scale_resumes(method, tiny_config, tmp_path):
    config = tiny_config(method, total_steps=4, checkpoint_every=2, log_every=2, export=False,
                         mixed_precision=True, vgg_weights="none") if method == "vae" else \
        tiny_config(method, total_steps=4, checkpoint_every=2, log_every=2, export=False, mixed_precision=True)
    full = keras_pgen.train(config, str(tmp_path / "full"), verbose=0)["model"]
    assert keras.config.dtype_policy().name == "float32"  # the global policy is put back
    for opt in full.optimizers().values():
        assert isinstance(opt, keras.optimizers.LossScaleOptimizer)
        # the dynamic scale starts at 2**15 and halves on every float16 overflow (that step is skipped)
        scale = float(opt.dynamic_scale.numpy())
        halvings = round(np.log2(2.0 ** 15 / scale))
        assert scale == 2.0 ** (15 - halvings) and 0 <= halvings < 4
        assert int(opt.inner_optimizer.iterations.numpy()) == 4 - halvings
    networks = [v for v in full.weights if v.trainable]
    assert networks and all(v.dtype == "float32" for v in networks)
    assert any(layer.compute_dtype == "float16" for layer in full._flatten_layers() if layer.weights)
    for tracker in full.metrics:
        assert np.isfinite(float(tracker.result()))

    config.total_steps = 2
    keras_pgen.train(config, str(tmp_path / "resumed"), verbose=0)
    config.total_steps = 4
    resumed = keras_pgen.train(config, str(tmp_path / "resumed"), verbose=0)["model"]
    a, b = optimizer_state(full), optimizer_state(resumed)
    assert a.keys() == b.keys() and any("dynamic_scale" in k for k in a)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)
