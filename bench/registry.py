"""The registry of benchmarks that bench/run.py runs, and the shape of their results.

A benchmark module registers a function that takes the run's `Context` and returns its results:

    from bench.registry import Result, benchmark

    @benchmark("pages", "page load times on the generated data")
    def pages(ctx):
        ...
        return [Result("pages.inbox.p50", 12.3, "ms", target=50, higher_is_better=False)]

and is named once in bench/run.py's MODULES. A result may also be a dict with the JSON keys below.
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any


@dataclasses.dataclass
class Result:
    """One figure. With a `ceiling`, `target` is the least acceptable ratio value/ceiling; without one, the
    least (or, when lower is better, the most) acceptable value. No target: a figure for information."""
    name: str
    value: float
    unit: str
    target: float | None = None
    ceiling: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.ceiling if self.ceiling else None

    @property
    def meets(self) -> bool | None:
        if self.target is None:
            return None
        if self.ceiling:
            return self.ratio >= self.target
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {"name": self.name, "value": _round(self.value), "unit": self.unit, "target": self.target,
                "ceiling": _round(self.ceiling), "ratio": None if ratio is None else round(ratio, 3),
                "meets": self.meets}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3 if abs(v) < 100 else 1)


@dataclasses.dataclass
class Context:
    """What a benchmark is given: the database (kind and URL, holding generated data), the Flask app on it,
    the run's options and the generated data's summary."""
    db: str                   # "sqlite" or "postgres"
    url: str
    app: Any
    quick: bool
    scale: float
    seed: int
    repetitions: int
    dataset: dict[str, Any]

    def say(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    fn: Callable[[Context], Iterable[Result | dict]]
    databases: tuple[str, ...]


BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(name: str, description: str = "", databases: tuple[str, ...] = ("sqlite", "postgres")):
    """Register `fn(ctx) -> [Result | dict]` under `name` (run.py --only NAME)."""
    def register(fn):
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} is registered twice")
        BENCHMARKS[name] = Benchmark(name, description or (fn.__doc__ or "").strip().split("\n")[0], fn,
                                     tuple(databases))
        return fn
    return register


class BenchError(RuntimeError):
    """A benchmark cannot run as asked (say, the data lacks what it needs); run.py prints it and goes on."""


class NeedsFreshData(BenchError):
    """The data has been used up by earlier runs (decided cases); run.py generates it again and retries."""


def timed(fn: Callable[[], int]) -> float:
    """Operations per second of `fn()`, which does the work and returns how many operations it did."""
    t0 = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - t0)


def median(values: list[float]) -> float:
    return statistics.median(values)
