"""``deapnn datasets``: list the datasets with their shapes."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("datasets", help="list datasets, shapes and sources")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data import DATASETS
    print(f"{'name':<14} {'task':<15} {'input shape':<14} {'classes':>7}  source")
    for name in sorted(DATASETS):
        info = DATASETS[name]
        shape = "×".join(str(s) for s in info.input_shape)
        print(f"{name:<14} {info.task:<15} {shape:<14} {info.num_classes:>7}  {info.source}")
    return 0
