"""Data regimes of the training split (issue 25): an exponential long tail (``--imbalance RHO``)
and symmetric label noise (``--label-noise R``). Only the training split changes; validation and
test stay balanced and clean, and the input normalisation keeps the statistics of the training
split before the regime (as the long-tailed CIFAR benchmarks keep CIFAR's).

**Long tail** (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples",
§6; Cao et al. 2019, "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
§4 and their code's ``get_img_num_per_cls``): the classes are put in an order drawn from the
seed, and the class at position ``c`` (0 = head, ``C − 1`` = tail) keeps

    ``n_c = floor(n_max · RHO^(−c/(C−1)))``  (Python ``int(n_max * (1 / RHO) ** (c / (C − 1)))``)

training examples, a uniform draw (from the seed) without replacement among its own, so the
head keeps ``n_max`` and the head/tail ratio is about ``RHO``. The rounding is the floor of the
LT-CIFAR code (:func:`long_tail_counts`). ``n_max`` is the smallest class count of the training
split before the regime, so every class can supply its share and the counts equal the formula
exactly also on datasets that are not balanced to begin with (wine, breast_cancer, a user's);
on a balanced training split (CIFAR-10 without a validation split: 5,000) it is the LT-CIFAR
benchmark's ``n_max``. A RHO that leaves a class fewer than 2 examples is refused
(:class:`RegimeError`, naming the class and its count).

**Label noise** (symmetric, "uniform" noise, e.g. Zhang & Sabuncu 2018, §4): after the long
tail, ``round(R · n)`` (Python's ``round``) of the ``n`` training labels, drawn from the seed
without replacement, are each replaced by a class drawn uniformly among the ``C − 1`` *other*
classes (a label never "flips" to itself); the flipped indices (into the training split the run
trains on) are recorded.

The same seed gives the same class order, the same kept examples and the same flipped labels;
the record (:func:`apply_regime`'s ``Dataset.meta["regime"]``) holds all three.
:class:`RegimeSettings` declares the two settings once for every command's configuration.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..config import Config, ConfigError, Interval, setting

#: the fewest training examples the long tail may leave a class
MIN_PER_CLASS = 2


class RegimeError(ValueError):
    """A regime that cannot be applied (a class left with fewer than ``MIN_PER_CLASS``
    examples, or a regression dataset); the message starts with the setting's name."""


def _seed(seed: int, what: str) -> int:
    from ..runtime import derive_seed
    return derive_seed(seed, "regime", what)


def long_tail_counts(n_max: int, num_classes: int, rho: float) -> list[int]:
    """The examples kept at each position of the class order: ``floor(n_max · RHO^(−c/(C−1)))``
    for ``c = 0 .. C−1``, computed as Cao et al.'s ``get_img_num_per_cls``
    (``int(n_max * (1 / RHO) ** (c / (C − 1)))``).

    >>> long_tail_counts(5000, 10, 100)
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    """
    if num_classes < 2:
        return [int(n_max)] * num_classes
    return [int(n_max * (1.0 / rho) ** (c / (num_classes - 1))) for c in range(num_classes)]


def _class_name(classes, k: int) -> str:
    name = classes[k] if classes is not None and k < len(classes) else k
    return f"class {k}" + (f" ({name})" if str(name) != str(k) else "")


def imbalance_indices(y: np.ndarray, num_classes: int, rho: float, seed: int,
                      classes=None) -> tuple[np.ndarray, list[int], int]:
    """``(kept indices in ascending order, class order (head first), n_max)`` of the long tail
    of labels ``y`` (module docstring); :class:`RegimeError` when a class would keep fewer than
    ``MIN_PER_CLASS`` examples (``classes``: the class names the message uses)."""
    rng = np.random.default_rng(_seed(seed, "imbalance"))
    order = [int(k) for k in rng.permutation(num_classes)]
    have = np.bincount(y, minlength=num_classes)
    n_max = int(have.min())
    counts = long_tail_counts(n_max, num_classes, rho)
    short = [(c, order[c]) for c in range(num_classes) if counts[c] < MIN_PER_CLASS]
    if short:
        c, k = short[-1]
        example = "example" if counts[c] == 1 else "examples"
        raise RegimeError(
            f"imbalance must leave every class at least {MIN_PER_CLASS} training examples: "
            f"RHO {rho:g} leaves {_class_name(classes, k)} with {counts[c]} training {example} "
            f"(seed {seed}; n_max {n_max}, so RHO at most {n_max / MIN_PER_CLASS:g})")
    keep = [rng.choice(np.flatnonzero(y == order[c]), counts[c], replace=False)
            for c in range(num_classes)]
    return np.sort(np.concatenate(keep)), order, n_max


def noisy_labels(y: np.ndarray, num_classes: int, rate: float,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, flipped indices in ascending order)``: ``round(rate · n)`` labels of ``y``
    drawn without replacement, each replaced by one of the other ``C − 1`` classes, uniformly
    (module docstring). ``y`` is not changed."""
    n = len(y)
    k = int(round(rate * n))
    rng = np.random.default_rng(_seed(seed, "label_noise"))
    flipped = np.sort(rng.choice(n, k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    out = np.array(y, copy=True)
    out[flipped] = (out[flipped] + rng.integers(1, num_classes, size=k)) % num_classes
    return out, flipped


def apply_regime(data, seed: int, imbalance: float | None = None,
                 label_noise: float = 0.0):
    """``data`` (a :class:`~deapnn.data.Dataset`) with its training split in the regime: the long
    tail of ``imbalance`` (None: none), then the label noise ``label_noise`` (0: none), both drawn
    from ``seed``; the validation and test splits are the same objects. ``meta["regime"]``
    records ``imbalance``, ``label_noise``, ``class_order`` (head first; None without a long
    tail), ``n_max``, ``train_class_counts`` (the labels trained on, per class), ``flipped``
    (indices into the new training split) and ``n_flipped``. Without a regime ``data`` is
    returned as it is."""
    if imbalance is None and not label_noise:
        return data
    if data.task != "classification":
        field = "imbalance" if imbalance is not None else "label_noise"
        raise RegimeError(f"{field} must be left out for {data.name}: a {data.task} dataset "
                          "has no classes")
    num_classes = int(data.num_classes)
    x, y = data.train.x, data.train.y
    record = {"imbalance": imbalance, "label_noise": float(label_noise), "class_order": None,
              "n_max": None}
    if imbalance is not None:
        keep, order, n_max = imbalance_indices(y.numpy(), num_classes, float(imbalance), seed,
                                               data.classes)
        index = torch.as_tensor(keep, dtype=torch.long)
        x, y = x[index], y[index]
        record.update(class_order=order, n_max=n_max)
    flipped = np.zeros(0, dtype=np.int64)
    if label_noise:
        labels, flipped = noisy_labels(y.numpy(), num_classes, float(label_noise), seed)
        y = torch.as_tensor(labels, dtype=y.dtype)
    record.update(train_class_counts=np.bincount(y.numpy(), minlength=num_classes).tolist(),
                  flipped=flipped.tolist(), n_flipped=int(len(flipped)))
    split = type(data.train)(x, y)
    return replace(data, train=split, meta={**data.meta, "regime": record})


def regime_summary(record: dict | None) -> dict:
    """The result-row keys of a regime record (:func:`apply_regime`): ``imbalance``,
    ``label_noise``, ``class_order``, ``train_class_counts`` and ``n_flipped`` (the flipped
    indices themselves are kept in the run's ``regime.json``)."""
    record = record or {}
    return {"imbalance": record.get("imbalance"), "label_noise": record.get("label_noise", 0.0),
            "class_order": record.get("class_order"),
            "train_class_counts": record.get("train_class_counts"),
            "n_flipped": record.get("n_flipped", 0)}


def regime_text(imbalance, label_noise) -> str:
    """The regime in words, for a regime line: ``long tail RHO 100, label noise 0.2`` (``balanced,
    clean labels`` without one)."""
    def shown(v):
        return f"{v:g}" if isinstance(v, (int, float)) else str(v)
    parts = [f"long tail RHO {shown(imbalance)}" if imbalance is not None else "balanced",
             f"label noise {shown(label_noise)}" if label_noise else "clean labels"]
    return ", ".join(parts)


@dataclass
class RegimeSettings(Config):
    """The data regime of a run's training split (module docstring), declared once for every
    command that trains on a dataset (``train``, ``gls``, ``nlfs``, ``evomal``; ``compare``
    takes the run's). Both need a classification dataset. The check that needs the data (every
    class keeps at least 2 examples) runs with :meth:`check_resources`, before a run starts,
    never when a configuration is made."""
    imbalance: float | None = setting(
        None, "long-tailed training split: class c of an order drawn from the seed keeps "
              "floor(n_max RHO^(-c/(C-1))) examples, RHO > 1 the head/tail ratio (Cui et al. "
              "2019); validation and test stay balanced [default: none]",
        metavar="RHO", group="data")
    label_noise: float = setting(
        0.0, "symmetric label noise: a fraction R in [0, 1) of the training labels, drawn "
             "from the seed, replaced by a different class; validation and test stay clean",
        metavar="R", group="data")

    #: The settings added after runs were stored (issue 25), with the values that make a run
    #: the one stored before they existed (:func:`deapnn.checkpoint.config_hash` leaves them
    #: out of its identity).
    ADDED_FIELDS = {"imbalance": None, "label_noise": 0.0}

    _parameter_constraints = {
        "imbalance": [Interval(float, 1, None, closed="neither"), None],
        "label_noise": [Interval(float, 0, 1, closed="left")],
    }

    def _check(self) -> None:
        """A regime needs a classification dataset."""
        super()._check()
        if self.imbalance is None and not self.label_noise:
            return
        from ..config import dataset_of
        spec = dataset_of(self.dataset)
        if spec.task != "classification":
            field = "imbalance" if self.imbalance is not None else "label_noise"
            raise ConfigError(f"{field} must be left out for {self.dataset}: a {spec.task} "
                              "dataset has no classes", field)

    def regime(self) -> dict:
        """``{"imbalance", "label_noise"}``: the keywords of :func:`deapnn.data.load_dataset`."""
        return {"imbalance": self.imbalance, "label_noise": float(self.label_noise)}

    def check_regime(self):
        """Refuse (:class:`~deapnn.config.ConfigError` naming ``imbalance``) a long tail that
        leaves a class fewer than 2 training examples with any seed of the run; the data is
        loaded for it. A dataset that cannot be loaded here is left to the run, which says
        why. Returns ``self``."""
        if self.imbalance is None:
            return self
        from . import load_dataset
        seeds = getattr(self, "seeds", None) or [getattr(self, "seed", 0)]
        for seed in seeds:
            try:
                data = load_dataset(self.dataset, root=getattr(self, "root", None),
                                    download=getattr(self, "download", False), seed=seed,
                                    val_size=getattr(self, "val_size", None), **self.regime())
            except RegimeError as exc:
                raise ConfigError(str(exc), "imbalance") from None
            except (OSError, ValueError):
                return self
            self.check_training_split(data, seed)
        return self

    def check_training_split(self, data, seed: int) -> None:
        """Rules on the training split in the regime (``data``, loaded with ``seed``; override
        and raise :class:`~deapnn.config.ConfigError`): e.g. GLS's children each need
        mini-batches of their own."""

    def check_resources(self, workers: int = 1, available: int | None = None):
        """:meth:`check_regime`, then the memory check of
        :meth:`deapnn.config.Config.check_resources`."""
        self.check_regime()
        return super().check_resources(workers, available)


__all__ = ["RegimeSettings", "RegimeError", "MIN_PER_CLASS", "apply_regime", "imbalance_indices",
           "long_tail_counts", "noisy_labels", "regime_summary", "regime_text"]
