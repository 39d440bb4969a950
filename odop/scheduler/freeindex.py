"""Free cores of every node, indexed for placement: nodes bucketed by how many cores
they have free, so that the first, tightest or loosest node with room for ``k`` cores is
found without a scan of every node (the cycle at 1,000 nodes)."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain, islice


class FreeIndex(Mapping[str, Sequence[int]]):
    """Free cores of every node (name -> cores in core order, nodes in insertion order),
    indexed by free count so that a placement over 1,000 nodes needs no scan of them all.

    Read it like a dict; :meth:`set` changes one node in O(log nodes)."""

    def __init__(self, free: Mapping[str, Sequence[int]] | None = None) -> None:
        self._free: dict[str, Sequence[int]] = {}
        self._pos: dict[str, int] = {}
        self._names: list[str] = []
        self._live: list[int] = []
        """Sorted positions of the nodes with at least one free core."""
        self._buckets: dict[int, list[str]] = {}
        """Free count (> 0) -> sorted names of the nodes with that many free cores."""
        self._counts: list[int] = []
        """Sorted free counts that have a bucket."""
        self.total = 0
        """Free cores over all nodes."""
        for name, cores in (free or {}).items():
            self.set(name, cores)

    @classmethod
    def of(cls, free: Mapping[str, Sequence[int]]) -> FreeIndex:
        """``free`` itself when it is an index, else an index of it."""
        return free if isinstance(free, FreeIndex) else cls(free)

    def __getitem__(self, name: str) -> Sequence[int]:
        return self._free[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def set(self, name: str, cores: Sequence[int]) -> None:
        """Node ``name`` has these free cores now (a new node goes last)."""
        pos = self._pos.get(name)
        old = 0
        if pos is None:
            pos = self._pos[name] = len(self._names)
            self._names.append(name)
        else:
            old = len(self._free[name])
        self._free[name] = cores
        new = len(cores)
        if new == old:
            return
        self.total += new - old
        if old:
            self._unbucket(old, name)
        else:
            insort(self._live, pos)
        if new:
            self._bucket(new, name)
        else:
            del self._live[bisect_left(self._live, pos)]

    def _bucket(self, count: int, name: str) -> None:
        names = self._buckets.get(count)
        if names is None:
            names = self._buckets[count] = []
            insort(self._counts, count)
        insort(names, name)

    def _unbucket(self, count: int, name: str) -> None:
        names = self._buckets[count]
        del names[bisect_left(names, name)]
        if not names:
            del self._buckets[count]
            del self._counts[bisect_left(self._counts, count)]

    def position(self, name: str) -> int:
        return self._pos[name]

    def max_count(self) -> int:
        """The most free cores on any one node."""
        return self._counts[-1] if self._counts else 0

    def first(self, want: int, start: int = 0) -> str | None:
        """The first node at or after position ``start`` (then from the beginning) with at
        least ``want`` free cores."""
        if want > self.max_count():
            return None
        live = self._live
        i = bisect_left(live, start)
        for pos in chain(islice(live, i, None), islice(live, 0, i)):
            name = self._names[pos]
            if len(self._free[name]) >= want:
                return name
        return None

    def tightest(self, want: int) -> str | None:
        """The node with the fewest free cores that are at least ``want`` (first by name)."""
        j = bisect_left(self._counts, max(want, 1))
        return self._buckets[self._counts[j]][0] if j < len(self._counts) else None

    def loosest(self, want: int) -> str | None:
        """The node with the most free cores if at least ``want`` (last by name)."""
        if not self._counts or self._counts[-1] < want:
            return None
        return self._buckets[self._counts[-1]][-1]
