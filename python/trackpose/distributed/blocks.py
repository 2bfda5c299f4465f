"""Blocks of a large volume and the merging of their labels across seams (pure numpy/scipy, no Dask).

A volume is cut into *cores*: disjoint boxes of ``block_size`` that tile it. Each core is segmented inside a
*padded* box that reaches ``overlap`` voxels further on each side (clipped to the volume, and reaching further
inwards where the volume's edge clips it, so that every box is ``block_size + 2 * overlap``, or ``min_box``, where
the volume allows), so two neighbouring padded boxes share a slab of at least ``2 * overlap`` voxels around the
boundary between their cores.
An object no larger than the overlap that crosses that boundary lies whole inside both padded boxes, so both
blocks see it; it becomes one object because its two labels overlap in the shared slab.

Merging: nodes are (block, local label); two nodes are joined when each is the other's largest overlap in a shared slab,
that overlap covers at least ``merge_fraction`` of the smaller of the two (counted inside the slab) and at least
``MIN_SHARE`` of the smaller of the two labels as a whole (so that two labels that barely enter the small box shared
by diagonal neighbours cannot join two objects through a voxel or two); connected components of that graph
(``scipy.sparse.csgraph.connected_components``, a union-find) are the objects. Each voxel takes the label of the
block whose core holds it, mapped to its component's global id. Ids are 1..N in the order of each object's first
node (block in C order, then local label): they depend on the data only, never on the order in which blocks
finished.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

__all__ = ["Block", "block_grid", "neighbour_pairs", "shared_box", "overlap_counts", "GlobalIds", "global_ids",
           "merge_label_blocks", "DEFAULT_MERGE_FRACTION", "MIN_SHARE"]

#: a label in one block and one in its neighbour are the same object when their overlap in the shared slab
#: covers at least this fraction of the smaller of the two (inside the slab)
DEFAULT_MERGE_FRACTION = 0.5
#: ... and the overlap must also hold at least this fraction of the smaller label as a whole (in its block)
MIN_SHARE = 0.1


@dataclass(frozen=True)
class Block:
    """One block of a volume: its position in the grid, its core box and its padded box (global coordinates).

    Boxes are tuples of (start, stop) per axis.
    """
    index: tuple
    core: tuple
    padded: tuple

    @property
    def name(self) -> str:
        """A file-name-safe name, e.g. ``"b0_2_1"``."""
        return "b" + "_".join(str(i) for i in self.index)

    @property
    def core_slices(self) -> tuple:
        return tuple(slice(a, b) for a, b in self.core)

    @property
    def padded_slices(self) -> tuple:
        return tuple(slice(a, b) for a, b in self.padded)

    @property
    def core_in_padded(self) -> tuple:
        """Slices that cut the core out of an array of the padded box."""
        return tuple(slice(c0 - p0, c1 - p0) for (c0, c1), (p0, _) in zip(self.core, self.padded))


def _as_tuple(value, ndim: int, name: str) -> tuple:
    values = tuple(int(v) for v in (value if np.iterable(value) else [value] * ndim))
    if len(values) != ndim:
        raise ValueError(f"{name} has {len(values)} values for a {ndim}-D volume: give one per axis "
                         f"({'Z,Y,X' if ndim == 3 else 'Y,X'}) or a single number")
    return values


def _padded_span(c0: int, c1: int, block: int, overlap: int, length: int, min_box: int = 0) -> tuple[int, int]:
    """The padded box of a core (c0, c1) along one axis.

    Every box spans ``max(block + 2 * overlap, min_box)`` voxels (or the whole axis), centred on its core and,
    where the volume's edge cuts it, shifted inwards; so it always holds ``overlap`` voxels on each side of the core
    that the volume has. Blocks at the volume's edges, the ragged last block along an axis, and blocks smaller than
    the network's tile then all see as much image around their objects as the others do: a box cut to a thin strip
    gives the network a small, mostly empty input, and its labels then differ from what the whole volume gives.
    """
    want = min(length, max(block + 2 * overlap, min_box))
    p0 = c0 - (want - (c1 - c0)) // 2
    p0 = max(0, min(p0, length - want))
    return p0, p0 + want


def block_grid(shape: Sequence[int], block_size, overlap, min_box=0) -> list[Block]:
    """Cut a volume of ``shape`` into blocks (C order of their grid index).

    Parameters
    ----------
    shape : (Z, Y, X) or (Y, X)
    block_size : int or one int per axis
        Size of each core (the last block along an axis may be smaller).
    overlap : int or one int per axis
        Voxels each padded box reaches past its core on each side; at least 1, and at least one object diameter
        for seams to merge correctly.
    min_box : int or one int per axis
        Smallest padded box (e.g. the network's tile in voxels of the volume, so that a small block is not run on
        an input smaller than a tile): boxes reach further out, evenly on both sides, to this size.
    """
    shape = tuple(int(s) for s in shape)
    block_size = _as_tuple(block_size, len(shape), "block_size")
    overlap = _as_tuple(overlap, len(shape), "overlap")
    min_box = _as_tuple(min_box, len(shape), "min_box")
    if any(b < 1 for b in block_size):
        raise ValueError(f"block_size must be positive, got {block_size}")
    if any(o < 0 for o in overlap):
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    starts = [range(0, s, b) for s, b in zip(shape, block_size)]
    blocks = []
    for index in itertools.product(*(range(len(r)) for r in starts)):
        core = tuple((i * b, min((i + 1) * b, s)) for i, b, s in zip(index, block_size, shape))
        padded = tuple(_padded_span(c0, c1, b, o, s, m)
                       for (c0, c1), b, o, s, m in zip(core, block_size, overlap, shape, min_box))
        blocks.append(Block(index=tuple(index), core=core, padded=padded))
    return blocks


def shared_box(a: Block, b: Block) -> Optional[tuple]:
    """The intersection of two blocks' padded boxes, or None when they do not overlap."""
    box = tuple((max(a0, b0), min(a1, b1)) for (a0, a1), (b0, b1) in zip(a.padded, b.padded))
    return box if all(lo < hi for lo, hi in box) else None


def neighbour_pairs(blocks: Sequence[Block]) -> list[tuple[int, int, tuple]]:
    """(i, j, shared box) for every pair of blocks i < j whose padded boxes overlap (faces, edges, corners)."""
    by_index = {b.index: k for k, b in enumerate(blocks)}
    ndim = len(blocks[0].index) if blocks else 0
    pairs = []
    for i, block in enumerate(blocks):
        for step in itertools.product((-1, 0, 1), repeat=ndim):
            j = by_index.get(tuple(p + s for p, s in zip(block.index, step)))
            if j is None or j <= i:
                continue
            box = shared_box(block, blocks[j])
            if box is not None:
                pairs.append((i, j, box))
    return pairs


def _crop(labels: np.ndarray, block: Block, box: tuple) -> np.ndarray:
    return labels[tuple(slice(lo - p0, hi - p0) for (lo, hi), (p0, _) in zip(box, block.padded))]


def overlap_counts(labels_a: np.ndarray, block_a: Block, labels_b: np.ndarray, block_b: Block,
                   box: tuple) -> np.ndarray:
    """Label pairs that overlap in ``box`` (the blocks' shared slab).

    Parameters
    ----------
    labels_a, labels_b : integer arrays of the blocks' padded boxes (0 = background)

    Returns
    -------
    (K, 7) int64 array of rows ``(label_a, label_b, voxels of both, voxels of label_a, voxels of label_b,
    all voxels of label_a, all voxels of label_b)``: columns 3 and 4 counted inside ``box``, 5 and 6 over the
    whole blocks.
    """
    a = np.ascontiguousarray(_crop(labels_a, block_a, box)).ravel().astype(np.int64)
    b = np.ascontiguousarray(_crop(labels_b, block_b, box)).ravel().astype(np.int64)
    both = (a > 0) & (b > 0)
    if not both.any():
        return np.zeros((0, 7), np.int64)
    size_a, size_b = np.bincount(a), np.bincount(b)
    total_a, total_b = np.bincount(labels_a.ravel()), np.bincount(labels_b.ravel())
    key = a[both] * (int(b.max()) + 1) + b[both]
    keys, n_ab = np.unique(key, return_counts=True)
    la, lb = np.divmod(keys, int(b.max()) + 1)
    return np.stack([la, lb, n_ab, size_a[la], size_b[lb], total_a[la], total_b[lb]], axis=1).astype(np.int64)


@dataclass
class GlobalIds:
    """Local -> global label maps, one lookup table per block (``luts[k][local]`` = global id, 0 = none)."""
    luts: list
    n_objects: int


def _best(labels: np.ndarray, overlap: np.ndarray) -> np.ndarray:
    """Rows holding each label's largest overlap (the first of ties)."""
    order = np.lexsort((-overlap, labels))
    best = np.zeros(len(labels), bool)
    best[order[np.unique(labels[order], return_index=True)[1]]] = True
    return best


def _mutual_best(counts: np.ndarray) -> np.ndarray:
    """Pairs where each label is the other's largest overlap: a label mis-segmented at a block's edge (two
    objects as one) then joins one of them, never both."""
    return _best(counts[:, 0], counts[:, 2]) & _best(counts[:, 1], counts[:, 2])


def global_ids(n_labels: Sequence[int], core_labels: Sequence[Iterable[int]],
               pairs: Iterable[tuple[int, int, np.ndarray]],
               merge_fraction: float = DEFAULT_MERGE_FRACTION) -> GlobalIds:
    """Join block labels across seams and number the objects 1..N.

    Parameters
    ----------
    n_labels : the largest local label of each block
    core_labels : the local labels present in each block's core (only these reach the output)
    pairs : (i, j, counts) with ``counts`` from :func:`overlap_counts` for blocks i and j
    merge_fraction : overlap (inside the slab) over the smaller label's size above which two labels are joined
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    offsets = np.concatenate([[0], np.cumsum([int(n) + 1 for n in n_labels])]).astype(np.int64)
    n_nodes = int(offsets[-1])
    rows, cols = [], []
    for i, j, counts in pairs:
        if len(counts) == 0:
            continue
        counts = np.asarray(counts, np.int64)
        keep = ((counts[:, 2] >= merge_fraction * np.minimum(counts[:, 3], counts[:, 4]))
                & (counts[:, 2] >= MIN_SHARE * np.minimum(counts[:, 5], counts[:, 6])) & _mutual_best(counts))
        rows.append(offsets[i] + counts[keep, 0])
        cols.append(offsets[j] + counts[keep, 1])
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n_nodes, n_nodes))
    _, component = connected_components(graph, directed=False)

    present = np.zeros(n_nodes, bool)
    for k, labels in enumerate(core_labels):
        labels = np.asarray(list(labels), np.int64)
        present[offsets[k] + labels[labels > 0]] = True
    # number components by their first present node: deterministic, independent of scheduling
    nodes = np.flatnonzero(present)
    first_components, first_nodes = np.unique(component[nodes], return_index=True)
    order = np.argsort(nodes[first_nodes], kind="stable")
    ids = np.zeros(component.max() + 1 if n_nodes else 1, np.int64)
    ids[first_components[order]] = np.arange(1, len(order) + 1)
    luts = []
    for k in range(len(n_labels)):
        lut = ids[component[offsets[k]:offsets[k + 1]]] * present[offsets[k]:offsets[k + 1]]
        lut[0] = 0
        luts.append(lut.astype(np.uint32))
    return GlobalIds(luts=luts, n_objects=len(order))


def core_labels_of(labels: np.ndarray, block: Block) -> np.ndarray:
    """Local labels present in the block's core (sorted, without 0)."""
    present = np.unique(labels[block.core_in_padded])
    return present[present > 0]


def merge_label_blocks(shape: Sequence[int], blocks: Sequence[Block], block_labels: Mapping[int, np.ndarray],
                       merge_fraction: float = DEFAULT_MERGE_FRACTION) -> np.ndarray:
    """Merge per-block labels of a volume that fits in memory into one label volume (uint32, ids 1..N).

    ``block_labels[k]`` holds block k's labels over its padded box, with its own local ids. The out-of-core path
    (:mod:`trackpose.distributed.volume`) runs the same steps over Dask and Zarr.
    """
    pairs = [(i, j, overlap_counts(block_labels[i], blocks[i], block_labels[j], blocks[j], box))
             for i, j, box in neighbour_pairs(blocks)]
    n_labels = [int(block_labels[k].max(initial=0)) for k in range(len(blocks))]
    cores = [core_labels_of(block_labels[k], b) for k, b in enumerate(blocks)]
    ids = global_ids(n_labels, cores, pairs, merge_fraction)
    out = np.zeros(tuple(shape), np.uint32)
    for k, block in enumerate(blocks):
        out[block.core_slices] = ids.luts[k][block_labels[k][block.core_in_padded]]
    return out
