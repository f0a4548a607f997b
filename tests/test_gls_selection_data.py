"""Which data GLS selection sees: the training images as they are (the paper, the default) or,
with ``selection_data="augmented"`` (the reference code), a fresh augmentation every generation
(Ding & Spector 2022, §3.3; docs/faithfulness.md)."""
import numpy as np
import torch
from torch import nn

from deapnn.algorithms import eaGradientLexicase
from deapnn.data import Dataset, Split, augment_batch
from deapnn.gls import GLSConfig, gls_toolbox
from deapnn.training import TrainConfig
from operators.gls import selGradientLexicase

N = 12
SEEN: list = []


class AlwaysWrong(nn.Module):
    """Predicts class 0 for everything (the labels are all 1, so every case fails for every child
    and standard lexicase examines every case); records the images it is shown in ``SEEN``."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        SEEN.append(x.detach().clone())
        out = torch.zeros(len(x), 2) + 0 * self.w
        out[:, 0] = 1.0
        return out


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 3, 8, 8, generator=g)
    y = torch.ones(N, dtype=torch.long)
    split = Split(x, y)
    return Dataset(name="tiny", task="classification", input_shape=(3, 8, 8), num_classes=2,
                   train=split, val=split, test=split, augment="crop_flip")


def _selection_inputs(selection_data, ngen=3, seed=0):
    """The images selection showed the first child, one ``(N, 3, 8, 8)`` tensor per generation
    (rows in case order)."""
    data = _data()
    tb = gls_toolbox(data, GLSConfig(selection_data=selection_data, chunk_size=N),
                     device=torch.device("cpu"))
    del tb.evaluate

    def no_training(children, **kw):
        for c in children:
            c.train_loss, c.diverged = 0.0, None
        return tuple(children)

    tb.register("mutate", no_training)
    SEEN.clear()
    eaGradientLexicase(AlwaysWrong(), tb, ngen, cfg=TrainConfig(lr=0.1), population_size=2,
                       seed=seed)
    per_gen = [torch.cat(SEEN[2 * g:2 * g + 2][:1]) for g in range(ngen)]   # child 0's batch
    assert len(SEEN) == 2 * ngen and all(len(b) == N for b in per_gen)
    return data, per_gen


def _as_set(batch):
    return sorted(tuple(np.round(img.flatten().numpy(), 5)) for img in batch)


def test_clean_selection_sees_the_training_images_as_they_are():
    data, per_gen = _selection_inputs("clean")
    for batch in per_gen:
        assert _as_set(batch) == _as_set(data.train.x)


def test_augmented_selection_draws_a_fresh_augmentation_every_generation():
    data, per_gen = _selection_inputs("augmented")
    clean = _as_set(data.train.x)
    sets = [_as_set(b) for b in per_gen]
    assert all(s != clean for s in sets)                  # augmented, not the clean images
    assert sets[0] != sets[1] and sets[1] != sets[2]      # a new draw each generation
    _, again = _selection_inputs("augmented")             # reproducible from the seed
    assert all(torch.equal(a, b) for a, b in zip(per_gen, again))
    _, other = _selection_inputs("augmented", seed=1)
    assert not torch.equal(per_gen[0], other[0])


def test_selgradientlexicase_augments_from_rng_and_all_survivors_see_the_same_copy():
    data = _data()
    models = [AlwaysWrong(), AlwaysWrong(), AlwaysWrong()]
    SEEN.clear()
    selGradientLexicase(models, 1, x=data.train.x, y=data.train.y, chunk_size=N,
                        rng=np.random.default_rng(7), augment="crop")
    assert len(SEEN) == 3 and torch.equal(SEEN[0], SEEN[1]) and torch.equal(SEEN[1], SEEN[2])
    # the augmentation is drawn from a generator seeded by the first draw of rng, then the case
    # order is the rng's permutation as in clean selection
    rng = np.random.default_rng(7)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    rng.integers(3)                                       # the event's fallback draw
    order = torch.from_numpy(rng.permutation(N))
    expected = augment_batch(data.train.x[order], "crop", gen)
    assert torch.equal(SEEN[0], expected)
