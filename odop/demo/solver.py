"""2-D heat equation, explicit 5-point stencil, row blocks over MPI ranks.

The global grid has ``ny`` rows and ``nx`` columns. Its outer ring is a fixed
(Dirichlet) boundary: the top row is held at 1.0, the other edges at 0.0. Each rank
owns a contiguous block of rows plus one ghost row above and below, exchanged with
its neighbours by ``Sendrecv`` before every sweep.

Bit-for-bit reproducibility across rank counts: the initial field and the stencil
use only ``+ - * /`` and ``max`` evaluated element by element in a fixed order, so a
cell's value never depends on which rank computed it. mpi4py is imported only
inside :func:`make_block`, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.2
"""kappa * dt / h**2 of one step (stable below 0.25)."""
PAGE = 4096
"""Bytes of a memory page: where the solver's arrays start (see :func:`page_aligned`)."""


def row_split(ny: int, size: int) -> list[tuple[int, int]]:
    """Half-open global row ranges ``[r0, r1)`` of each of ``size`` ranks."""
    if size < 1 or ny < size:
        raise ValueError(f"ny={ny} rows cannot be split over {size} ranks; need ny >= ranks >= 1")
    base, extra = divmod(ny, size)
    bounds, r0 = [], 0
    for rank in range(size):
        r1 = r0 + base + (1 if rank < extra else 0)
        bounds.append((r0, r1))
        r0 = r1
    return bounds


def _bump(x: np.ndarray, y: np.ndarray, cx: float, cy: float, r2: float) -> np.ndarray:
    d = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / r2
    b = np.maximum(0.0, 1.0 - d)
    return b * b


def initial_rows(r0: int, r1: int, nx: int, ny: int) -> np.ndarray:
    """Rows ``[r0, r1)`` of the deterministic initial field, shape (r1 - r0, nx)."""
    gi = np.arange(r0, r1, dtype=np.int64)[:, None]
    gj = np.arange(nx, dtype=np.int64)[None, :]
    y = gi / float(ny - 1)
    x = gj / float(nx - 1)
    u = _bump(x, y, 0.3, 0.6, 0.02) + 0.5 * _bump(x, y, 0.7, 0.3, 0.04)
    u = u + 0.05 * (((gi * 7 + gj * 13) % 17) / 16.0)
    u[:, 0] = 0.0
    u[:, nx - 1] = 0.0
    u[gi[:, 0] == ny - 1, :] = 0.0
    u[gi[:, 0] == 0, :] = 1.0
    return np.ascontiguousarray(u, dtype=np.float64)


def page_aligned(*shape: int) -> np.ndarray:
    """A zeroed float64 array of ``shape`` whose data starts on a page boundary.

    A sweep's speed depends on where its four arrays lie relative to each other modulo
    the page size (a load that matches an earlier store's address in its low 12 bits
    waits for it): 0.43 to 0.62 ms over 200 random placements here, 0.42-0.45 ms in
    each of 12 page-aligned layouts. Where ``np.empty`` puts them depends on what else
    the process allocated first; page-aligned, every run of the demo computes alike.
    """
    cells = int(np.prod(shape))
    raw = np.zeros(cells + PAGE // 8, dtype=np.float64)
    skip = (-raw.ctypes.data % PAGE) // 8
    return raw[skip : skip + cells].reshape(shape)


def stencil(u: np.ndarray, v: np.ndarray, lo: int, hi: int, alpha: float,
            scratch: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """One explicit sweep of rows ``[lo, hi)`` (columns 1..nx-2) from ``u`` into ``v``.

    The rows are swept as one flat run of cells, from column 1 of row ``lo`` to column
    nx-2 of row ``hi - 1``, so that every numpy call sees contiguous 1-D arrays; the
    edge cells that the run crosses between rows are then copied back from ``u``. On 2-D
    views without the edge columns numpy copies each operand through a buffer first:
    2-3 times the time, and a time that depended on where that buffer happened to lie
    (up to 40 % here, after unrelated changes to the process's other allocations).

    ``scratch``: two arrays of ``(hi - lo) * nx - 2`` cells to compute in, so that a sweep
    allocates nothing, as a compiled code would not.
    """
    if hi <= lo:
        return
    if not (u.flags.c_contiguous and v.flags.c_contiguous):
        raise ValueError("stencil needs C-contiguous u and v")
    nx = u.shape[1]
    a, b = lo * nx + 1, hi * nx - 1
    f, g = u.reshape(-1), v.reshape(-1)
    lap, tmp = scratch if scratch is not None else (np.empty(b - a), np.empty(b - a))
    np.add(f[a - nx : b - nx], f[a + nx : b + nx], out=lap)
    lap += f[a - 1 : b - 1]
    lap += f[a + 1 : b + 1]
    np.multiply(f[a:b], 4.0, out=tmp)
    lap -= tmp
    lap *= alpha
    np.add(f[a:b], lap, out=g[a:b])
    v[lo:hi, 0] = u[lo:hi, 0]
    v[lo:hi, -1] = u[lo:hi, -1]


@dataclass
class Block:
    """One rank's rows with ghost rows: ``u`` has shape (rows + 2, nx)."""

    comm: Any
    r0: int
    r1: int
    nx: int
    ny: int
    up: int
    down: int
    u: np.ndarray
    v: np.ndarray
    scratch: tuple[np.ndarray, np.ndarray] | None = None
    """Work arrays of one sweep (made at the first), so that sweeps allocate nothing."""

    @property
    def interior(self) -> np.ndarray:
        """The owned rows (no ghosts), a contiguous view."""
        return self.u[1:-1]

    @property
    def update_rows(self) -> tuple[int, int]:
        """Padded row range that the stencil updates (global boundary rows excluded)."""
        lo = max(self.r0, 1) - self.r0 + 1
        hi = min(self.r1, self.ny - 1) - self.r0 + 1
        return lo, max(lo, hi)


def make_block(comm: Any, nx: int, ny: int) -> Block:
    """This rank's block of the initial field."""
    from mpi4py import MPI

    if nx < 3 or ny < 3:
        raise ValueError(f"grid {ny}x{nx} is too small; need nx >= 3 and ny >= 3")
    rank, size = comm.Get_rank(), comm.Get_size()
    r0, r1 = row_split(ny, size)[rank]
    u, v = page_aligned(r1 - r0 + 2, nx), page_aligned(r1 - r0 + 2, nx)
    u[1:-1] = v[1:-1] = initial_rows(r0, r1, nx, ny)
    up = rank - 1 if rank > 0 else MPI.PROC_NULL
    down = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    return Block(comm, r0, r1, nx, ny, up, down, u, v)


def exchange_halos(b: Block) -> None:
    """Fill both ghost rows from the neighbouring ranks."""
    b.comm.Sendrecv(b.u[1], dest=b.up, sendtag=1, recvbuf=b.u[-1], source=b.down, recvtag=1)
    b.comm.Sendrecv(b.u[-2], dest=b.down, sendtag=2, recvbuf=b.u[0], source=b.up, recvtag=2)


def advance(b: Block, sweeps: int = 1) -> None:
    """One time step of ``ALPHA``, done as ``sweeps`` sweeps of ``ALPHA / sweeps`` each."""
    alpha = ALPHA / sweeps
    lo, hi = b.update_rows
    if b.scratch is None:
        cells = max(0, (hi - lo) * b.nx - 2)
        b.scratch = (page_aligned(cells), page_aligned(cells))
    for _ in range(sweeps):
        exchange_halos(b)
        stencil(b.u, b.v, lo, hi, alpha, b.scratch)
        b.u, b.v = b.v, b.u


def gather(b: Block, root: int = 0) -> np.ndarray | None:
    """The global field (ny, nx) on ``root``; None on the other ranks. Collective."""
    rows = [r1 - r0 for r0, r1 in row_split(b.ny, b.comm.Get_size())]
    counts = [r * b.nx for r in rows]
    displs = [sum(counts[:i]) for i in range(len(counts))]
    out = np.empty((b.ny, b.nx), dtype=np.float64) if b.comm.Get_rank() == root else None
    recv = [out, (counts, displs)] if out is not None else None
    b.comm.Gatherv(b.interior, recv, root=root)
    return out
