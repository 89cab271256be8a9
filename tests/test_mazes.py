"""Maze generation checked against an independent decoder, union-find and BFS written here."""

from __future__ import annotations

import hashlib
from collections import deque

import numpy as np
import pytest

from recurdepth.data.mazes import (
    MazeGenerator,
    count_distinct_mazes,
    generate_mazes,
    image_side,
)
from recurdepth.errors import ConfigError, DataError

WHITE, BLACK, GREEN, RED = (255, 255, 255), (0, 0, 0), (0, 255, 0), (255, 0, 0)


def decode(image: np.ndarray, size: int) -> tuple[int, list[tuple[int, int]], int, int, np.ndarray]:
    """Check the geometry and colours of one input image; return (m, edges, start, end, lattice)."""
    m = (size + 1) // 2
    side = 2 * (size + 2) + 2
    assert image.shape == (3, side, side) and image.dtype == np.uint8
    # 1-pixel black border, then every lattice pixel is a uniform 2x2 block.
    assert not image[:, 0].any() and not image[:, -1].any()
    assert not image[:, :, 0].any() and not image[:, :, -1].any()
    lattice = image[:, 1:-1:2, 1:-1:2]
    assert lattice.shape == (3, size + 2, size + 2)
    assert np.array_equal(image[:, 1:-1, 1:-1], lattice.repeat(2, axis=1).repeat(2, axis=2))
    colours = {tuple(int(v) for v in lattice[:, i, j]) for i in range(size + 2) for j in range(size + 2)}
    assert colours <= {WHITE, BLACK, GREEN, RED}
    rgb = lattice.transpose(1, 2, 0)
    green = np.argwhere((rgb == GREEN).all(-1))
    red = np.argwhere((rgb == RED).all(-1))
    assert len(green) == 1 and len(red) == 1
    (gi, gj), (ri, rj) = green[0], red[0]
    assert gi % 2 == gj % 2 == ri % 2 == rj % 2 == 1  # endpoints are cells
    open_ = (rgb != 0).any(-1)
    # Lattice border and wall corners black; every cell open.
    assert not open_[0].any() and not open_[-1].any() and not open_[:, 0].any() and not open_[:, -1].any()
    assert not open_[::2, ::2].any()
    assert open_[1::2, 1::2].all()
    edges = []
    for i in range(1, size + 1):
        for j in range(1, size + 1):
            if i % 2 == 1 and j % 2 == 0 and open_[i, j]:
                edges.append((((i - 1) // 2) * m + (j - 2) // 2, ((i - 1) // 2) * m + j // 2))
            if i % 2 == 0 and j % 2 == 1 and open_[i, j]:
                edges.append((((i - 2) // 2) * m + (j - 1) // 2, (i // 2) * m + (j - 1) // 2))
    start = (gi // 2) * m + gj // 2
    end = (ri // 2) * m + rj // 2
    return m, edges, start, end, lattice


def is_perfect(n: int, edges: list[tuple[int, int]]) -> bool:
    """Union-find: n - 1 edges joining all n cells without a cycle."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra == rb:
            return False
        parent[ra] = rb
    return len(edges) == n - 1


def expected_solution(m: int, edges: list[tuple[int, int]], start: int, end: int, size: int) -> tuple[np.ndarray, int]:
    """BFS from start; the mask of the shortest path (cells and walls between) and its length."""
    adj: dict[int, list[int]] = {c: [] for c in range(m * m)}
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    prev = {start: start}
    queue = deque([start])
    while queue:
        c = queue.popleft()
        for d in adj[c]:
            if d not in prev:
                prev[d] = c
                queue.append(d)
    lat = np.zeros((size + 2, size + 2), np.uint8)
    c, steps = end, 0
    while True:
        r, q = divmod(c, m)
        lat[2 * r + 1, 2 * q + 1] = 1
        if c == start:
            break
        p = prev[c]
        pr, pq = divmod(p, m)
        lat[r + pr + 1, q + pq + 1] = 1
        c, steps = p, steps + 1
    img = np.zeros((2 * (size + 2) + 2,) * 2, np.uint8)
    img[1:-1, 1:-1] = lat.repeat(2, 0).repeat(2, 1)
    return img, steps


def is_dfs_tree_rooted_at(m: int, edges: list[tuple[int, int]], root: int) -> bool:
    """Every grid edge joins an ancestor and a descendant of the tree rooted at ``root``."""
    adj: dict[int, list[int]] = {c: [] for c in range(m * m)}
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    ancestors = {root: {root}}
    queue = deque([root])
    while queue:
        c = queue.popleft()
        for d in adj[c]:
            if d not in ancestors:
                ancestors[d] = ancestors[c] | {d}
                queue.append(d)
    for c in range(m * m):
        for d in (c + 1 if c % m < m - 1 else None, c + m if c + m < m * m else None):
            if d is not None and c not in ancestors[d] and d not in ancestors[c]:
                return False
    return True


def check_batch(batch, size: int) -> list[tuple]:
    """Check every maze of a batch; return the decoded (m, edges, start, end) of each."""
    decoded = []
    for i in range(len(batch.path_lengths)):
        m, edges, start, end, _ = decode(batch.inputs[i], size)
        assert start != end
        assert is_perfect(m * m, edges)
        mask, steps = expected_solution(m, edges, start, end, size)
        assert batch.solutions[i].dtype == np.uint8
        assert np.array_equal(batch.solutions[i], mask)
        assert batch.path_lengths[i] == steps
        decoded.append((m, edges, start, end))
    return decoded


def test_geometry_of_the_paper_sizes():
    assert [image_side(s) for s in (9, 11, 13, 59)] == [24, 28, 32, 124]


@pytest.mark.parametrize("bad", [8, 2, 1, -3, 0, 9.0, True, "9"])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ConfigError, match="odd integer >= 3"):
        generate_mazes(bad, 1)


@pytest.mark.parametrize("size,count", [(3, 20), (5, 100), (9, 300), (13, 100), (59, 5)])
def test_mazes_are_perfect_and_solved_exactly(size, count):
    batch = generate_mazes(size, count, seed=11)
    decoded = check_batch(batch, size)
    # The DFS is rooted at the start cell (SPEC §2): its tree is a DFS tree from the start.
    assert all(is_dfs_tree_rooted_at(m, e, s) for m, e, s, _ in decoded)


def test_random_dfs_root_option():
    batch = generate_mazes(9, 200, seed=3, dfs_root="random")
    decoded = check_batch(batch, 9)
    rooted_at_start = sum(is_dfs_tree_rooted_at(m, e, s) for m, e, s, _ in decoded)
    assert rooted_at_start < 150  # a random root is rarely a valid DFS root for the start cell
    with pytest.raises(ConfigError, match="DFS root"):
        generate_mazes(9, 1, dfs_root="corner")


def test_endpoints_are_uniform_and_distinct():
    batch = generate_mazes(9, 25_000, seed=5)
    rgb = batch.inputs[:, :, 1:-1:2, 1:-1:2].transpose(0, 2, 3, 1)
    green = (rgb == GREEN).all(-1).reshape(len(rgb), -1).argmax(1)
    red = (rgb == RED).all(-1).reshape(len(rgb), -1).argmax(1)
    assert (green != red).all()
    counts = np.bincount(green, minlength=rgb.shape[1] * rgb.shape[2])
    cells = counts[counts > 0]
    assert len(cells) == 25
    assert np.abs(cells / 1000 - 1).max() < 0.15  # 25,000 / 25 cells, sd ~3%


def test_path_lengths_match_the_paper():
    # Paper Figure 4 / SPEC §2: mean optimal path ≈ 10.8 / 15.0 / 19.9 cell steps.
    for size, mean in ((9, 10.8), (11, 15.0), (13, 19.9)):
        batch = generate_mazes(size, 20_000, seed=1)
        assert abs(batch.path_lengths.mean() - mean) < 0.15, (size, batch.path_lengths.mean())


def test_determinism_threads_and_seeds():
    a = generate_mazes(11, 3000, seed=7)
    b = generate_mazes(11, 3000, seed=7, threads=None)
    c = generate_mazes(11, 3000, seed=8)
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.solutions, b.solutions)
    assert not np.array_equal(a.inputs, c.inputs)
    # Generating a prefix gives the same first mazes.
    assert np.array_equal(generate_mazes(11, 100, seed=7).inputs, a.inputs[:100])


def test_golden_bytes():
    # Catches any silent change of the generator: bump GENERATOR_VERSION and this value together.
    gen = MazeGenerator(9, seed=0)
    h = hashlib.sha256()
    for split, n in (("train", 64), ("test", 16)):
        batch = gen.split(split, n)
        h.update(batch.inputs.tobytes())
        h.update(batch.solutions.tobytes())
    assert h.hexdigest() == GOLDEN_SHA256


GOLDEN_SHA256 = "42fea83de98573c00200b8eac5108b94d48ccf05323483de51f005496c6351b1"


def test_full_size_set_has_no_duplicates_and_no_overlap():
    gen = MazeGenerator(9, seed=0)
    train = gen.split("train", 50_000)
    test = gen.split("test", 10_000)
    assert train.duplicates > 0 and train.drawn == 50_000 + train.duplicates  # dedupe did work
    train_rows = {row.tobytes() for row in train.inputs.reshape(50_000, -1)}
    test_rows = {row.tobytes() for row in test.inputs.reshape(10_000, -1)}
    assert len(train_rows) == 50_000 and len(test_rows) == 10_000
    assert not train_rows & test_rows
    assert test.drawn == 10_000 + test.duplicates + test.overlaps


def _all_dfs_mazes(m: int) -> tuple[set, set]:
    """Every (tree, root) randomized DFS can make on an m×m grid, by exhaustive branching."""
    n = m * m

    def neighbours(c: int) -> list[int]:
        r, q = divmod(c, m)
        return [r2 * m + q2 for r2, q2 in ((r - 1, q), (r + 1, q), (r, q - 1), (r, q + 1))
                if 0 <= r2 < m and 0 <= q2 < m]

    rooted: set = set()

    def explore(stack: tuple, visited: frozenset, tree: frozenset, root: int) -> None:
        if not stack:
            rooted.add((tree, root))
            return
        c = stack[-1]
        options = [d for d in neighbours(c) if d not in visited]
        if not options:
            explore(stack[:-1], visited, tree, root)
        for d in options:
            explore(stack + (d,), visited | {d}, tree | {frozenset((c, d))}, root)

    for root in range(n):
        explore((root,), frozenset({root}), frozenset(), root)
    return rooted, {t for t, _ in rooted}


@pytest.mark.parametrize("size", [3, 5])
def test_count_of_distinct_mazes(size):
    m = (size + 1) // 2
    n = m * m
    rooted, trees = _all_dfs_mazes(m)
    assert count_distinct_mazes(size, "start") == len(rooted) * (n - 1)
    assert count_distinct_mazes(size, "random") == len(trees) * n * (n - 1)


def test_counts_beyond_the_distinct_mazes_are_refused():
    assert count_distinct_mazes(3) == 24
    batch = generate_mazes(3, 24, seed=0)  # every maze of size 3
    assert len({row.tobytes() for row in batch.inputs.reshape(24, -1)}) == 24
    with pytest.raises(DataError, match="only 24 distinct mazes"):
        generate_mazes(3, 25)
    gen = MazeGenerator(3, seed=0)
    gen.split("train", 20)
    with pytest.raises(DataError, match="asked for 25"):
        gen.split("test", 5)
    assert count_distinct_mazes(9) is None  # more than 10**9


def test_bad_counts():
    with pytest.raises(ConfigError, match="non-negative"):
        generate_mazes(9, -1)
    assert generate_mazes(9, 0).inputs.shape == (0, 3, 24, 24)
