"""Compiled maze kernels: randomized DFS generation, hashing, dedupe, BFS solve and rendering.

A maze of m × m cells is stored compactly as one byte per cell: bit 0 set = the wall to the right
neighbour is open, bit 1 set = the wall to the neighbour below is open. Every random draw comes from
a splitmix64 stream seeded per maze from (data set key, maze index), so a maze depends only on its
seed and index, never on threads, batch sizes or numba's global RNG: the same seed gives byte-
identical data on any machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_PHI = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_RIGHT = np.uint8(1)
_DOWN = np.uint8(2)
_WHITE = np.uint8(255)

# Mazes per parallel work item: large enough to amortise the scratch allocations.
_WORK_ITEM = 256


@njit(cache=True, inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """The splitmix64 finaliser: a bijective 64-bit mixing function."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def maze_state(key: np.uint64, index: np.int64) -> np.uint64:
    """The initial RNG state of maze ``index`` of the stream ``key``."""
    return mix64(key + np.uint64(index) * _PHI)


@njit(cache=True)
def make_maze(state: np.uint64, m: np.int64, random_root: bool, cells: np.ndarray,
              visited: np.ndarray, stack: np.ndarray) -> tuple[np.int64, np.int64]:
    """Carve ``cells`` (m*m bytes) by randomized DFS and return the (start, end) cells.

    Start and end are two distinct uniform cells; the DFS is rooted at the start cell (SPEC §2)
    or, with ``random_root``, at a further uniform cell.
    """
    n = m * m
    # Uniform integers below k by multiply-shift on the top 32 bits (k <= 2**32; bias < k / 2**32).
    state += _PHI
    start = np.int64(((mix64(state) >> _S32) * np.uint64(n)) >> _S32)
    state += _PHI
    end = np.int64(((mix64(state) >> _S32) * np.uint64(n - 1)) >> _S32)
    if end >= start:
        end += 1
    root = start
    if random_root:
        state += _PHI
        root = np.int64(((mix64(state) >> _S32) * np.uint64(n)) >> _S32)
    for c in range(n):
        cells[c] = 0
        visited[c] = 0
    nb = np.empty(4, np.int64)
    visited[root] = 1
    stack[0] = root
    sp = 1
    while sp > 0:
        c = np.int64(stack[sp - 1])
        r = c // m
        col = c - r * m
        k = 0
        if r > 0 and visited[c - m] == 0:
            nb[k] = c - m
            k += 1
        if col < m - 1 and visited[c + 1] == 0:
            nb[k] = c + 1
            k += 1
        if r < m - 1 and visited[c + m] == 0:
            nb[k] = c + m
            k += 1
        if col > 0 and visited[c - 1] == 0:
            nb[k] = c - 1
            k += 1
        if k == 0:
            sp -= 1
            continue
        if k == 1:
            nxt = nb[0]
        else:
            state += _PHI
            nxt = nb[np.int64(((mix64(state) >> _S32) * np.uint64(k)) >> _S32)]
        if nxt == c + 1:
            cells[c] |= _RIGHT
        elif nxt == c - 1:
            cells[nxt] |= _RIGHT
        elif nxt == c + m:
            cells[c] |= _DOWN
        else:
            cells[nxt] |= _DOWN
        visited[nxt] = 1
        stack[sp] = nxt
        sp += 1
    return start, end


@njit(cache=True)
def maze_hash(cells: np.ndarray, start: np.int64, end: np.int64) -> np.uint64:
    """A 64-bit hash of a maze (walls and endpoints); never 0, which marks an empty table slot.

    Equal mazes always hash equal, so dedupe by hash never keeps a duplicate; a collision of two
    different mazes (probability ~1e-10 per 60,000) would only drop one distinct maze.
    """
    n = cells.shape[0]
    h = mix64(np.uint64(n) + _PHI)
    word = _ZERO
    for i in range(n):
        word |= np.uint64(cells[i] & np.uint8(3)) << np.uint64(2 * (i % 32))
        if i % 32 == 31 or i == n - 1:
            h = mix64(h ^ word) + _PHI
            word = _ZERO
    h = mix64(h ^ ((np.uint64(start) << _S32) | np.uint64(end)))
    if h == _ZERO:
        h = _ONE
    return h


@njit(cache=True, parallel=True)
def generate_batch(key: np.uint64, first_index: np.int64, m: np.int64, random_root: bool,
                   cells: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   hashes: np.ndarray) -> None:
    """Generate mazes ``first_index .. first_index + len(cells) - 1`` of stream ``key``."""
    count = cells.shape[0]
    items = (count + _WORK_ITEM - 1) // _WORK_ITEM
    for item in prange(items):
        visited = np.empty(m * m, np.uint8)
        stack = np.empty(m * m, np.int32)
        for i in range(item * _WORK_ITEM, min(count, (item + 1) * _WORK_ITEM)):
            s, e = make_maze(maze_state(key, first_index + i), m, random_root, cells[i], visited, stack)
            starts[i] = s
            ends[i] = e
            hashes[i] = maze_hash(cells[i], s, e)


@njit(cache=True)
def dedupe(hashes: np.ndarray, table: np.ndarray, owners: np.ndarray, split_id: np.int64,
           limit: np.int64) -> tuple[np.ndarray, np.int64, np.int64, np.int64]:
    """Accept hashes in order that are not yet in ``table`` (open addressing), at most ``limit``.

    Returns (accepted positions, candidates consumed, duplicates within split ``split_id``,
    duplicates of another split). Candidates after the ``limit``-th acceptance are not consumed,
    so the outcome never depends on how the stream was cut into batches.
    """
    mask = np.uint64(table.shape[0] - 1)
    accepted = np.empty(min(limit, hashes.shape[0]), np.int64)
    k = 0
    i = 0
    same = 0
    other = 0
    while i < hashes.shape[0] and k < limit:
        h = hashes[i]
        slot = h & mask
        while True:
            t = table[slot]
            if t == _ZERO:
                table[slot] = h
                owners[slot] = split_id
                accepted[k] = i
                k += 1
                break
            if t == h:
                if owners[slot] == split_id:
                    same += 1
                else:
                    other += 1
                break
            slot = (slot + _ONE) & mask
        i += 1
    return accepted[:k], i, same, other


@njit(cache=True)
def rehash(table: np.ndarray, owners: np.ndarray, new_table: np.ndarray, new_owners: np.ndarray) -> None:
    """Move every entry of an open-addressing table into a larger empty one."""
    mask = np.uint64(new_table.shape[0] - 1)
    for i in range(table.shape[0]):
        h = table[i]
        if h != _ZERO:
            slot = h & mask
            while new_table[slot] != _ZERO:
                slot = (slot + _ONE) & mask
            new_table[slot] = h
            new_owners[slot] = owners[i]


@njit(cache=True, inline="always")
def _fill(image: np.ndarray, channel: np.int64, li: np.int64, lj: np.int64, value: np.uint8) -> None:
    # Lattice pixel (li, lj) becomes the 2x2 block at (1 + 2 li, 1 + 2 lj): the 1-pixel border.
    y = 1 + 2 * li
    x = 1 + 2 * lj
    image[channel, y, x] = value
    image[channel, y, x + 1] = value
    image[channel, y + 1, x] = value
    image[channel, y + 1, x + 1] = value


@njit(cache=True, inline="always")
def _mark(mask: np.ndarray, li: np.int64, lj: np.int64) -> None:
    y = 1 + 2 * li
    x = 1 + 2 * lj
    mask[y, x] = 1
    mask[y, x + 1] = 1
    mask[y + 1, x] = 1
    mask[y + 1, x + 1] = 1


@njit(cache=True)
def solve_and_render(cells: np.ndarray, m: np.int64, start: np.int64, end: np.int64,
                     image: np.ndarray, solution: np.ndarray, parent: np.ndarray,
                     queue: np.ndarray) -> np.int64:
    """Render a maze into zeroed ``image`` (3,H,W) and its BFS shortest path into zeroed
    ``solution`` (H,W); return the path length in cell steps."""
    n = m * m
    for c in range(n):
        r = c // m
        col = c - r * m
        for ch in range(3):
            _fill(image, ch, 2 * r + 1, 2 * col + 1, _WHITE)
        if cells[c] & _RIGHT:
            for ch in range(3):
                _fill(image, ch, 2 * r + 1, 2 * col + 2, _WHITE)
        if cells[c] & _DOWN:
            for ch in range(3):
                _fill(image, ch, 2 * r + 2, 2 * col + 1, _WHITE)
    sr = start // m
    sc = start - sr * m
    er = end // m
    ec = end - er * m
    # Start green (0,255,0), end red (255,0,0).
    _fill(image, 0, 2 * sr + 1, 2 * sc + 1, np.uint8(0))
    _fill(image, 2, 2 * sr + 1, 2 * sc + 1, np.uint8(0))
    _fill(image, 1, 2 * er + 1, 2 * ec + 1, np.uint8(0))
    _fill(image, 2, 2 * er + 1, 2 * ec + 1, np.uint8(0))

    # Breadth-first search from the start through open walls.
    for c in range(n):
        parent[c] = -1
    parent[start] = start
    queue[0] = start
    head = 0
    tail = 1
    while head < tail:
        c = np.int64(queue[head])
        head += 1
        if c == end:
            break
        r = c // m
        col = c - r * m
        if cells[c] & _RIGHT and parent[c + 1] < 0:
            parent[c + 1] = c
            queue[tail] = c + 1
            tail += 1
        if cells[c] & _DOWN and parent[c + m] < 0:
            parent[c + m] = c
            queue[tail] = c + m
            tail += 1
        if col > 0 and cells[c - 1] & _RIGHT and parent[c - 1] < 0:
            parent[c - 1] = c
            queue[tail] = c - 1
            tail += 1
        if r > 0 and cells[c - m] & _DOWN and parent[c - m] < 0:
            parent[c - m] = c
            queue[tail] = c - m
            tail += 1
    c = end
    steps = 0
    _mark(solution, 2 * er + 1, 2 * ec + 1)
    while c != start:
        p = np.int64(parent[c])
        if p < 0:  # unreachable: the generator only makes connected mazes
            return -1
        r, col = c // m, c % m
        pr, pc = p // m, p % m
        _mark(solution, r + pr + 1, col + pc + 1)
        _mark(solution, 2 * pr + 1, 2 * pc + 1)
        c = p
        steps += 1
    return steps


@njit(cache=True, parallel=True)
def render_batch(cells: np.ndarray, starts: np.ndarray, ends: np.ndarray, m: np.int64,
                 images: np.ndarray, solutions: np.ndarray, lengths: np.ndarray) -> None:
    """Solve and render every maze of a batch into zeroed ``images`` / ``solutions``."""
    count = cells.shape[0]
    items = (count + _WORK_ITEM - 1) // _WORK_ITEM
    for item in prange(items):
        parent = np.empty(m * m, np.int32)
        queue = np.empty(m * m, np.int32)
        for i in range(item * _WORK_ITEM, min(count, (item + 1) * _WORK_ITEM)):
            lengths[i] = solve_and_render(cells[i], m, starts[i], ends[i], images[i],
                                          solutions[i], parent, queue)


@njit(cache=True, parallel=True)
def row_hashes(rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash (FNV-1a, then mixed) of every row of a 2-D uint8 array."""
    out = np.empty(rows.shape[0], np.uint64)
    for i in prange(rows.shape[0]):
        h = np.uint64(0xCBF29CE484222325)
        for j in range(rows.shape[1]):
            h = (h ^ np.uint64(rows[i, j])) * np.uint64(0x100000001B3)
        out[i] = mix64(h)
    return out


@njit(cache=True)
def count_dfs_trees(m: np.int64) -> tuple[np.int64, np.int64]:
    """Count spanning trees of the m×m grid that randomized DFS can produce (m <= 4).

    A rooted spanning tree is a DFS tree iff it is normal (Trémaux): every grid edge joins an
    ancestor and a descendant. Returns (sum over trees of the roots it is normal for, number of
    trees normal for at least one root), enumerating every edge subset of size m*m - 1.
    """
    n = m * m
    ne = 2 * m * (m - 1)
    eu = np.empty(ne, np.int64)
    ev = np.empty(ne, np.int64)
    k = 0
    for c in range(n):
        if c % m < m - 1:
            eu[k] = c
            ev[k] = c + 1
            k += 1
        if c // m < m - 1:
            eu[k] = c
            ev[k] = c + m
            k += 1
    uf = np.empty(n, np.int64)
    adj = np.empty((n, 4), np.int64)
    deg = np.empty(n, np.int64)
    tin = np.empty(n, np.int64)
    tout = np.empty(n, np.int64)
    stack = np.empty(n, np.int64)
    pos = np.empty(n, np.int64)
    rooted_total = 0
    trees_any = 0
    for subset in range(1 << ne):
        bits = 0
        x = subset
        while x:
            x &= x - 1
            bits += 1
        if bits != n - 1:
            continue
        for c in range(n):
            uf[c] = c
        acyclic = True
        for e in range(ne):
            if subset >> e & 1:
                a = eu[e]
                while uf[a] != a:
                    a = uf[a]
                b = ev[e]
                while uf[b] != b:
                    b = uf[b]
                if a == b:
                    acyclic = False
                    break
                uf[a] = b
        if not acyclic:
            continue
        for c in range(n):
            deg[c] = 0
        for e in range(ne):
            if subset >> e & 1:
                adj[eu[e], deg[eu[e]]] = ev[e]
                deg[eu[e]] += 1
                adj[ev[e], deg[ev[e]]] = eu[e]
                deg[ev[e]] += 1
        roots = 0
        for root in range(n):
            # Euler-tour times of the tree rooted at root: u is an ancestor of v iff
            # tin[u] <= tin[v] and tout[v] <= tout[u].
            for c in range(n):
                tin[c] = -1
                pos[c] = 0
            t = 0
            stack[0] = root
            sp = 1
            tin[root] = t
            t += 1
            while sp > 0:
                c = stack[sp - 1]
                if pos[c] < deg[c]:
                    nxt = adj[c, pos[c]]
                    pos[c] += 1
                    if tin[nxt] < 0:
                        tin[nxt] = t
                        t += 1
                        stack[sp] = nxt
                        sp += 1
                else:
                    tout[c] = t
                    t += 1
                    sp -= 1
            normal = True
            for e in range(ne):
                if not (subset >> e & 1):
                    a = eu[e]
                    b = ev[e]
                    if not ((tin[a] <= tin[b] and tout[b] <= tout[a])
                            or (tin[b] <= tin[a] and tout[a] <= tout[b])):
                        normal = False
                        break
            if normal:
                roots += 1
        rooted_total += roots
        if roots > 0:
            trees_any += 1
    return rooted_total, trees_any
