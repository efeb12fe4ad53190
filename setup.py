"""keras_pgen: GANs, perceptual autoencoders and perceptual generation for small image data sets."""
from setuptools import find_packages, setup

setup(
    name="keras_pgen",
    version="0.1.0",
    description="Train image generators on small data sets with Keras 3 (TensorFlow on CPUs, JAX on GPUs) and serve "
                "them with TF Serving.",
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["keras_pgen", "keras_pgen.*"]) + ["keras_pgen.configs"],
    package_dir={"keras_pgen.configs": "configs"},
    # the built-in shapes' judge (keras_pgen/metrics/shapes_judge.py) ships its trained weights
    package_data={"keras_pgen.metrics": ["shapes_judge.npz"]},
    # one command with sub-commands (train, export, generate, evaluate, benchmark); bin/* are its shims in a checkout
    entry_points={"console_scripts": ["keras-pgen = keras_pgen.cli:main"]},
    install_requires=[
        "tensorflow>=2.16",  # Keras 3. Not tensorflow-addons: end of life, incompatible with Keras 3.
        "keras>=3.0",
        "ml-collections",
        "absl-py",
        "numpy",
        "pillow",
        "tensorboard",
    ],
    extras_require={
        "test": ["pytest", "pytest-timeout", "pytest-xdist", "scipy", "jax[cpu]"],
        "tfds": ["tensorflow-datasets"],
        # the JAX engine (bin/train --backend=jax); on GPUs install "jax[cuda12]" instead
        "jax": ["jax"],
    },
)
