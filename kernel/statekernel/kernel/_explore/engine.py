"""The breadth-first engine every search of the explorer runs on.

:class:`BreadthFirst` owns what a breadth-first search keeps besides its states' meaning: the
nodes in the order they were found, each node's parent and the move that led to it, the set
of keys already seen, the layers and the depth, the bounds (``max_depth``, ``max_states``, a
deadline), progress calls, and the paths back to the start that traces are built from.

A search supplies the expansion. It asks :meth:`BreadthFirst.batches` for ranges of node
indices to expand, in order, and expands each node itself in a plain ``for`` loop over the
range, appending the children it finds with :meth:`BreadthFirst.add` or, in a hot loop, with
the engine's lists bound to local variables. Between two batches the engine moves to the next
layer, checks the depth bound, looks at the clock and reports progress, so the bookkeeping
costs nothing per node: a batch ends at a layer's end and, when there is a clock to watch, at
every ``check_every`` nodes.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Hashable, Iterator
from typing import Final, Generic, TypeVar

__all__ = [
    "CHECK_EVERY",
    "MAX_DEPTH",
    "MAX_STATES",
    "PROGRESS_EVERY",
    "TIME_BUDGET",
    "BreadthFirst",
    "Progress",
]

MAX_DEPTH: Final = "max_depth"
"""The bound on the number of steps from the start."""

MAX_STATES: Final = "max_states"
"""The bound on the number of distinct states kept."""

TIME_BUDGET: Final = "time_budget"
"""The bound on the wall-clock time, in seconds."""

CHECK_EVERY: Final = 512
"""Expanded nodes between two looks at the clock."""

PROGRESS_EVERY: Final = 1.0
"""Seconds between two progress calls."""

Progress = Callable[[int, int, float], None]
"""A progress callback: ``(states seen, current depth, seconds so far)``."""

N = TypeVar("N")


class BreadthFirst(Generic[N]):
    """One breadth-first search's nodes, links, layers and bounds.

    ``nodes[i]`` is the ``i``-th node found (``nodes[0]`` the root), ``parent[i]`` the node
    it was found from and ``via[i]`` the move (an index the search gives meaning to) that led
    there; ``seen`` holds the keys of the nodes kept. ``limit`` is the state bound, or -1 for
    none: a search must not add a node once ``len(nodes) == limit``, and calls
    :meth:`stop_full` instead. ``where`` is added to the bound messages to name the search.
    After the search, ``depth`` is the last layer reached and ``bound`` the bound that
    stopped it (``None`` when every node was expanded), with ``bound_detail`` saying how.
    """

    def __init__(
        self,
        root: N,
        root_key: Hashable,
        *,
        max_depth: int | None,
        max_states: int | None,
        deadline: float | None,
        progress: Progress | None = None,
        started: float = 0.0,
        check_every: int = CHECK_EVERY,
        where: str = "",
    ) -> None:
        self.nodes: list[N] = [root]
        self.parent = array("q", [-1])
        self.via = array("q", [-1])
        self.seen: set[Hashable] = {root_key}
        self.max_depth = max_depth
        self.max_states = max_states
        self.limit = max_states if max_states is not None else -1
        self.deadline = deadline
        self.progress = progress
        self.started = started
        self.check_every = check_every
        self.where = where
        self.depth = 0
        self.bound: str | None = None
        self.bound_detail = ""

    def add(self, key: Hashable, node: N, parent: int, via: int) -> bool:
        """Keep ``node`` found from ``parent`` by move ``via`` unless its ``key`` was seen;
        False (and the search stopped) when the state bound leaves no room for it."""
        if key in self.seen:
            return True
        if len(self.nodes) == self.limit:
            self.stop_full()
            return False
        self.seen.add(key)
        self.nodes.append(node)
        self.parent.append(parent)
        self.via.append(via)
        return True

    def stop(self, bound: str, detail: str) -> None:
        """Record that ``bound`` stopped the search."""
        self.bound = bound
        self.bound_detail = detail

    def stop_full(self) -> None:
        """Record that the state bound stopped the search."""
        self.stop(MAX_STATES, f"the state bound {self.max_states} was reached{self.where}")

    def batches(self, cut_off: Callable[[int, int], bool] | None = None) -> Iterator[range]:
        """The node indices to expand, in order, as ranges within one layer, until every node
        found has been expanded or a bound stops the search.

        When the next layer lies at the depth bound the search ends there, and ``bound`` is
        set unless ``cut_off(first, end)`` says that nothing in those nodes is left
        unexplored (the bound then cut nothing off).
        """
        nodes = self.nodes
        max_depth = self.max_depth
        deadline = self.deadline
        progress = self.progress
        every = self.check_every
        watch = deadline is not None or progress is not None
        next_report = self.started + PROGRESS_EVERY
        first = 0
        layer_end = 1
        while first < len(nodes):
            if first == layer_end:
                self.depth += 1
                layer_end = len(nodes)
                if max_depth is not None and self.depth >= max_depth:
                    if cut_off is None or cut_off(first, layer_end):
                        self.stop(MAX_DEPTH, f"the depth bound {max_depth} was reached")
                    return
            end = layer_end
            if watch:
                if first % every == 0:
                    now = time.perf_counter()
                    if deadline is not None and now >= deadline:
                        detail = self.where or f" at depth {self.depth}"
                        self.stop(TIME_BUDGET, f"the time budget ran out{detail}")
                        return
                    if progress is not None and now >= next_report:
                        progress(len(nodes), self.depth, now - self.started)
                        next_report = now + PROGRESS_EVERY
                end = min(end, first - first % every + every)
            yield range(first, end)
            first = end

    def path(self, node: int) -> list[tuple[int, int]]:
        """``(node, move)`` pairs from the start to ``node``."""
        parent = self.parent
        via = self.via
        out = []
        while node > 0:
            out.append((node, via[node]))
            node = parent[node]
        out.reverse()
        return out
