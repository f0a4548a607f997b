"""deapnn: deep learning inside DEAP — evolve network weights and loss functions."""
from setuptools import find_packages, setup

setup(
    name="deapnn",
    version="0.1.0",
    description="DEAP operators and algorithms that train PyTorch models: Gradient Lexicase "
                "Selection, neural loss function search, EvoMAL, fast lexicase selection.",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["deapnn", "deapnn.*", "operators", "operators.*"]),
    install_requires=[
        "deap>=1.4",
        "torch",
        "torchvision",
        "scoop>=0.7",
        "numpy",
        "scikit-learn",   # embedded offline datasets (digits, diabetes, iris, wine, breast cancer)
        "mnist1d",        # MNIST-1D generated offline from its templates
        "tqdm",           # progress bars
        "matplotlib",     # run plots
        "sympy",          # loss formulas: canonical forms, LaTeX
        "scipy",          # SVHN .mat loading (torchvision), Bessel ops
    ],
    extras_require={
        # the test suite builds the API reference too (tests/test_docs.py)
        "test": ["pytest>=7", "pytest-timeout", "sphinx>=7", "myst-parser>=2"],
        "docs": ["sphinx>=7", "myst-parser>=2"],   # make docs
        "bench": ["lexicase==0.3.0", "higher==0.2.1"],
    },
    entry_points={"console_scripts": ["deapnn=deapnn.cli:main"]},
)
