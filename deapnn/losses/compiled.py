"""Base class of loss modules that evaluate a function compiled from their genome."""
from __future__ import annotations

from torch import nn


class CompiledLoss(nn.Module):
    """A loss module whose ``forward`` calls ``self._fn``, a function compiled from the module's
    genome (a loss graph, NLFS; a GP tree, EvoMAL §4.3–4.4) by ``_compile``.

    Compiled functions (closures, ``exec``-made code) do not pickle, and SCOOP pickles losses to
    ship them to workers: ``_fn`` is left out of the pickled state and rebuilt on unpickling.
    """

    def _compile(self) -> None:
        """Set ``self._fn`` (and whatever else derives from the compilation) from the genome."""
        raise NotImplementedError

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_fn", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._compile()
