"""Run configurations with their constraints declared once.

Every method's configuration (``GLSConfig``, ``NLFSConfig``, ``EvoMALConfig``, ``TrainConfig``,
...) is a dataclass deriving from :class:`Config`. Its ``_parameter_constraints`` maps a field
to the values it accepts (the scheme of scikit-learn's ``_parameter_constraints``): a list of
:class:`Interval`, :class:`Options`, :class:`Check`, Python types or ``None``; a value passes
when it satisfies any of them. Cross-field rules go in ``Config._check``. ``validate()``
raises :class:`ConfigError` (a ``ValueError``) naming the field; the command line turns it into
its one-line usage error naming the flag (``pop`` → ``--pop``).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
from typing import ClassVar


#: The largest run seed (every library a run seeds, Python, NumPy, torch and scikit-learn's
#: splits, accepts the range 0 .. 2**32 - 1).
SEED_MAX = 2**32 - 1

#: The largest float32. A learning rate or weight decay above it cannot reach a float32 kernel
#: (torch fails with "value cannot be converted to type float without overflow").
FLOAT32_MAX = 3.4028234663852886e38

#: The most seeds one setting lists, each a whole run or training. A range such as
#: ``0-1000000000000000000`` is refused before it is materialised.
SEEDS_MAX = 10_000

#: The largest size (batch size, layer width) a setting takes. torch reads sizes as 64-bit
#: integers and fails on larger ones ("Overflow when unpacking long long"); no dataset or
#: network comes near it.
SIZE_MAX = 2**31 - 1


class ConfigError(ValueError):
    """An invalid configuration value; ``field`` names the setting (None: several)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class Interval:
    """Numbers of ``kind`` (``int`` or ``float``) between ``low`` and ``high`` (None: open);
    ``closed`` is "both", "left", "right" or "neither". Floats must be finite."""

    def __init__(self, kind, low=None, high=None, closed: str = "both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value) -> bool:
        """Whether ``value`` is a number of this kind inside the interval."""
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low if left else value <= self.low):
            return False
        return not (self.high is not None and (value > self.high if right else value >= self.high))

    def describe(self) -> str:
        """The interval in words, for an error message (e.g. "an integer >= 1")."""
        kind = "an integer" if self.kind is int else "a finite number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>=' if self.closed in ('both', 'left') else '>'} {self.low}")
        if self.high is not None:
            parts.append(f"{'<=' if self.closed in ('both', 'right') else '<'} {self.high}")
        return kind + (" " + " and ".join(parts) if parts else "")


class Options:
    """One of a fixed set of values; with ``other`` (a :class:`Check`), or a value it accepts
    (e.g. a dataset name, or a path to the user's ``.npz`` file)."""

    def __init__(self, values, other: Check | None = None):
        self.values = tuple(values)
        self.other = other

    def accepts(self, value) -> bool:
        """Whether ``value`` is one of the options (or ``other`` accepts it)."""
        if isinstance(value, (str, int, float, bool)) and value in self.values:
            return True
        return self.other is not None and self.other.accepts(value)

    def describe(self) -> str:
        """The options in words, for an error message."""
        words = "one of " + ", ".join(str(v) for v in self.values)
        return words + (f", or {self.other.describe()}" if self.other is not None else "")


class Check:
    """A predicate with the words that describe it (e.g. a list of distinct seeds)."""

    def __init__(self, predicate, description: str):
        self.predicate, self.description = predicate, description

    def accepts(self, value) -> bool:
        """Whether the predicate holds for ``value`` (a predicate that raises: it does not)."""
        try:
            return bool(self.predicate(value))
        except Exception:
            return False

    def describe(self) -> str:
        """The description given with the predicate."""
        return self.description


def setting(default=dataclasses.MISSING, help: str = "", *, factory=dataclasses.MISSING,
            flag: str | None = None, group: str | None = None, metavar: str | None = None,
            parse=None, aliases: tuple = (), invocation: bool = False, show=None):
    """A configuration field with what the command line needs to offer it as a flag, declared
    once beside the field (``dataclasses.field`` metadata; ``deapnn.commands.flags`` builds
    the flags from it). ``help``: the one description; ``flag``: when not ``--field-name``
    (``--no-X`` for a boolean makes a store-false flag); ``group``: the help section;
    ``parse``: an argparse ``type`` for values that are not a plain int/float/str; ``aliases``:
    former flag names, accepted with a deprecation warning until
    :data:`deapnn.deprecation.REMOVAL`; ``invocation``: a setting of this invocation, not of
    the run (a resumed run takes it from its command line); ``show``: how the help writes the
    default (value -> text) when not as the flag would be typed by default. A field without
    ``help`` gets no flag."""
    metadata = {"help": help, "flag": flag, "group": group, "metavar": metavar,
                "parse": parse, "aliases": tuple(aliases), "invocation": invocation,
                "show": show}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _accepts(constraint, value) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (constraint is not bool
                                                      and isinstance(value, bool))
    return constraint.accepts(value)


def _describe(constraint) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return {str: "a string", bool: "true or false", int: "an integer",
                float: "a number"}.get(constraint, constraint.__name__)
    return constraint.describe()


def int_list(low: int | None = None, *, distinct: bool = False, nonempty: bool = True,
             high: int | None = None) -> Check:
    """A list of integers (each ``>= low`` and ``<= high``), optionally non-empty and without
    repeats."""
    def ok(value):
        return (isinstance(value, (list, tuple)) and (len(value) > 0 or not nonempty)
                and all(isinstance(v, int) and not isinstance(v, bool)
                        and (low is None or v >= low) and (high is None or v <= high)
                        for v in value)
                and (not distinct or len(set(value)) == len(value)))
    bounds = [f">= {low}"] * (low is not None) + [f"<= {high}"] * (high is not None)
    words = ("a non-empty " if nonempty else "a ") + "list of integers" + \
        (" " + " and ".join(bounds) if bounds else "") + (" without repeats" if distinct else "")
    return Check(ok, words)


def parse_list(kind, what: str, *, positive: bool = False, nonempty: bool = False,
               skip: tuple = ()):
    """A reader of comma-separated items, each read with ``kind`` (blank items and items in
    ``skip`` dropped); a bad text raises ``ValueError`` saying what was expected (the command
    line reports it as its one-line error)."""
    def parse(text: str) -> list:
        items = [t.strip() for t in str(text).split(",") if t.strip() and t.strip() not in skip]
        try:
            values = [kind(t) for t in items]
        except ValueError:
            raise ValueError(f"must be comma-separated {what}, got {text!r}") from None
        if (nonempty and not values) or (positive and min(values, default=1) < 1):
            raise ValueError(f"must list {'positive ' if positive else ''}{what}, got {text!r}")
        return values
    return parse


def parse_seeds(text: str) -> list[int]:
    """Seeds as ``0,1,2``, a range ``0-4`` (both ends included) or a mix (``0-2,7``); at most
    :data:`SEEDS_MAX` of them (counted before a range is materialised)."""
    seeds: list[int] = []
    for part in (t.strip() for t in str(text).split(",")):
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            first, last = (int(low), int(high)) if sep and low else (int(part), int(part))
        except ValueError:
            raise ValueError(f"must be seeds like 0,1,2 or a range 0-4, got {text!r}") from None
        if last < first:
            raise ValueError(f"must be seeds like 0,1,2 or a range 0-4 (low-high), got {text!r}")
        if len(seeds) + last - first + 1 > SEEDS_MAX:
            raise ValueError(f"must list at most {SEEDS_MAX} seeds, got {_shortened(text)}")
        seeds += range(first, last + 1)
    if not seeds:
        raise ValueError(f"must list at least one seed, got {text!r}")
    return seeds


def parse_seed_indices(text: str):
    """Seed indices as :func:`parse_seeds` (``0-4``, ``0,1,2``), or ``none`` for none; a bare
    single number is the former count form (``--seeds 5`` = ``0-4``), returned as an ``int``
    for the configuration to convert with a deprecation warning (until
    :data:`deapnn.deprecation.REMOVAL`)."""
    text = str(text).strip()
    if text in ("none", ""):
        return []
    if text.isdigit():
        return int(text)
    return parse_seeds(text)


def _shortened(text: str, limit: int = 60) -> str:
    """``repr(text)``, its middle elided beyond ``limit`` characters (an error stays one short
    line whatever was typed)."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit // 2] + "..." + text[-limit // 2:])


def seed_indices(value, name: str, owner: str) -> list[int]:
    """A list of seed indices, or ``list(range(n))`` for the former count form ``n`` (an int),
    with a deprecation warning naming ``owner``'s setting ``name``; a count above
    :data:`SEEDS_MAX` is returned as it is, for the constraint to refuse (never materialised)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= SEEDS_MAX:
        from .deprecation import warn_count
        warn_count(owner, name, value)
        return list(range(value))
    return value


def seed_constraint() -> list:
    """The constraint of a run seed: an integer in 0 .. :data:`SEED_MAX`."""
    return [Interval(int, 0, SEED_MAX)]


def seed_list(*, distinct: bool = True) -> Check:
    """A non-empty list of at most :data:`SEEDS_MAX` run seeds, each in 0 .. :data:`SEED_MAX`
    (without repeats)."""
    def ok(value):
        return (isinstance(value, (list, tuple)) and 0 < len(value) <= SEEDS_MAX
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= SEED_MAX
                        for v in value)
                and (not distinct or len(set(value)) == len(value)))
    return Check(ok, f"a non-empty list of at most {SEEDS_MAX} integers in 0..{SEED_MAX}"
                 + (" without repeats" if distinct else ""))


def subset_of(values, *, distinct: bool = True) -> Check:
    """A list whose items all come from ``values`` (each at most once when ``distinct``)."""
    values = tuple(values)

    def ok(value):
        return (isinstance(value, (list, tuple)) and all(v in values for v in value)
                and (not distinct or len(set(value)) == len(value)))
    return Check(ok, "a list of " + ", ".join(values) + (" without repeats" if distinct else ""))


def available_memory() -> int | None:
    """Bytes a new run may use on this host: ``MemAvailable`` of ``/proc/meminfo`` (else the
    physical memory), less when the process's cgroup has a lower limit; None when unknown
    (nothing is then refused)."""
    found = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            found = next((int(line.split()[1]) * 1024 for line in fh
                          if line.startswith("MemAvailable:")), None)
    except (OSError, ValueError, IndexError):
        pass
    if found is None:
        try:
            found = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit, encoding="ascii") as fh, open(usage, encoding="ascii") as fu:
                text, used = fh.read().strip(), int(fu.read())
        except (OSError, ValueError):
            continue
        if text.isdigit() and int(text) < 2**60:
            found = min(found, max(int(text) - used, 0))
    return found


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def network_parameters(model: str, input_shape, num_classes: int) -> int:
    """The parameters of network ``model`` for ``input_shape`` and ``num_classes``, counted on
    torch's meta device (nothing is allocated; milliseconds)."""
    import torch

    from .models import build_model, check_user_model, is_user_model
    if is_user_model(model):        # the user's factory may need real tensors: built once
        return check_user_model(model, input_shape, num_classes)
    with torch.device("meta"):
        net = build_model(model, input_shape, num_classes)
    return sum(p.numel() for p in net.parameters())


def dataset_of(spec: str, field: str = "dataset"):
    """The :class:`~deapnn.data.DatasetInfo` of a configuration's dataset (a name or the user's
    data, :func:`deapnn.data.dataset_info`); a problem is a :class:`ConfigError` naming
    ``field``."""
    from .data import dataset_info
    try:
        return dataset_info(spec)
    except ValueError as exc:
        raise ConfigError(str(exc), field) from None


def check_network(model: str, info, field: str = "model") -> None:
    """Network ``model`` (a name or the user's factory, built and run once) takes the examples
    of the dataset ``info`` describes and gives its outputs; else a :class:`ConfigError`
    naming ``field``."""
    from .models import check_model_input, is_user_model
    try:
        check_model_input(model, info.input_shape, info.num_classes, field)
    except ValueError as exc:
        if is_user_model(model):        # its message names the setting already
            raise ConfigError(str(exc), field) from None
        raise ConfigError(f"model {model} does not fit dataset {info.name}: {exc}",
                          field) from None


@dataclasses.dataclass
class Config:
    """Base of the run configurations (see the module docstring)."""

    _parameter_constraints: ClassVar[dict] = {}

    def __post_init__(self) -> None:
        """A configuration is valid the moment it exists: an invalid value raises
        :class:`ConfigError` here (subclasses that complete their fields call this last)."""
        self.validate()

    def validate(self):
        """Raise :class:`ConfigError` naming the first invalid setting; return ``self``."""
        for name, allowed in type(self)._parameter_constraints.items():
            value = getattr(self, name)
            if not any(_accepts(c, value) for c in allowed):
                words = " or ".join(_describe(c) for c in allowed)
                raise ConfigError(f"{name} must be {words}, got {value!r}", name)
        self._check()
        return self

    def _check(self) -> None:
        """Cross-field rules (override; raise :class:`ConfigError`)."""

    def memory_needs(self) -> list[tuple[str, float, str]]:
        """``(field, bytes, what)``: a lower estimate of the memory one process of the run
        holds at once, with the setting that sets it (override; none by default)."""
        return []

    def check_resources(self, workers: int = 1, available: int | None = None):
        """Refuse (:class:`ConfigError` naming the setting) a run that cannot fit this host:
        :meth:`memory_needs` for ``workers`` processes at once against ``available`` bytes
        (default: :func:`available_memory`). Called before a run starts, by the command line
        and the runners, never when a configuration is made: a worker re-making the
        configuration of a running run must not refuse it for the memory the run holds.
        Returns ``self``."""
        available = available_memory() if available is None else available
        if available is None:
            return self
        for name, need, what in self.memory_needs():
            if need * workers > available:
                each = f" each, {workers} processes at once" if workers > 1 else ""
                raise ConfigError(f"{what} would need about {_gib(need)} of memory{each}, "
                                  f"more than the {_gib(available)} this host has available",
                                  name)
        return self

    @classmethod
    def invocation_settings(cls) -> tuple[str, ...]:
        """The fields declared ``setting(..., invocation=True)``: settings of an invocation, not
        of the run, which a resumed run takes from its command line, not from config.json."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("invocation"))

    def for_invocation(self, **values):
        """This configuration with invocation settings (:meth:`invocation_settings`) replaced;
        any other setting is a :class:`ConfigError`."""
        unknown = set(values) - set(self.invocation_settings())
        if unknown:
            raise ConfigError(f"not an invocation setting: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **values)

    def to_dict(self) -> dict:
        """The configuration as plain data (``config.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        """The configuration stored by :meth:`to_dict`, validated. Unknown keys are an error
        (a config.json of another version or a tampered one is refused, not half-read)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a {cls.__name__} must be a JSON object, got "
                              f"{type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}",
                              unknown[0])
        return cls(**data).validate()


__all__ = ["FLOAT32_MAX", "SEED_MAX", "SEEDS_MAX", "SIZE_MAX", "available_memory",
           "check_network", "dataset_of",
           "network_parameters", "seed_constraint", "seed_list", "setting", "parse_list",
           "parse_seeds", "parse_seed_indices", "seed_indices", "Config", "ConfigError", "Interval",
           "Options", "Check", "int_list", "subset_of"]
