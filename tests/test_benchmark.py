"""bin/benchmark's train and pipeline tasks (numbers are measured, never asserted; the plumbing is)."""
import json
import stat

import pytest

import keras_pgen
from keras_pgen import benchmark
from keras_pgen.networks import MSGGANDiscriminator, MSGGANGenerator


def test_train_task_counts_parameters_and_reports_the_ratio_to_a_reference(tmp_path, capsys):
    # A stand-in for the PyTorch peer: any Python that prints the peer's JSON line.
    fake = tmp_path / "fake_python"
    fake.write_text("#!/bin/sh\necho '{\"impl\": \"pytorch-reference\", \"images_per_s\": 2.0}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    result = benchmark.run_task("train", method="msg_gan", preset="tiny", steps=3, warmup=1, torch_python=str(fake))
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["task"] == "train" and line["batch_size"] == 8 and line["steps_timed"] == 3
    assert line["images_per_s"] == pytest.approx(8 / line["seconds_per_step"])
    assert line["ratio"] == pytest.approx(line["images_per_s"] / 2.0)
    # the parameter counts are those of the preset's networks (tests/networks checks bench64's figures)
    config = keras_pgen.get_config("msg_gan", "tiny")
    net = dict(resolution=config.resolution, fmap_base=config.fmap_base, fmap_max=config.fmap_max)
    assert result["g_params"] == MSGGANGenerator(config.latent_dim, **net).count_params()
    assert result["d_params"] == MSGGANDiscriminator(**net).count_params()


def test_pipeline_task_and_bench64_counts():
    result = benchmark.pipeline_task("msg_gan", "tiny", steps=5, warmup=1)
    assert result["task"] == "pipeline" and result["batches_timed"] == 5 and result["images_per_s"] > 0
    with pytest.raises(ValueError, match="unknown benchmark task"):
        benchmark.run_task("nope")
