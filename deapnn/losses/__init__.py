"""Loss functions: NLFS graph genomes (Morgan & Hougen 2024), EvoMAL loss trees and meta-loss
networks (Raymond et al. 2023), and the named loss library."""
# Explicit imports only: deapnn.losses.tree defines primitives named min, max and abs.
from .archive import LossArchive, to_sympy
from .graph import GraphError, LossGraph
from .library import (BaikalLoss, CrossEntropyLoss, FocalLoss, GraphLoss,
                      LabelSmoothingCrossEntropy, SoftmaxMSELoss, available, get,
                      load_registry, register, registry_path, resolve_loss)
from .metaloss import MetaLossNetwork
from .tree import TreeLoss, correctArguments, lossPrimitiveSet, parse_tree
from .unrolled import LocalSearchConfig, UnrolledDivergence, local_search

__all__ = ["LossGraph", "GraphError", "GraphLoss", "CrossEntropyLoss", "BaikalLoss", "FocalLoss",
           "LabelSmoothingCrossEntropy", "SoftmaxMSELoss", "get", "register", "available",
           "load_registry", "registry_path", "resolve_loss", "lossPrimitiveSet", "correctArguments",
           "TreeLoss", "parse_tree", "MetaLossNetwork", "LocalSearchConfig", "UnrolledDivergence",
           "local_search", "LossArchive", "to_sympy"]
