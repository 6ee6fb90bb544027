"""Mesh decimation to a target face count (the release decimates its marching-cubes mesh to 5e4 faces).

Quadric edge collapse (Garland & Heckbert 1997) through ``fast-simplification`` (the Fast-Quadric-Mesh-Simplification
library that trimesh also uses). Vertex colours ride along the collapses: every original vertex ends in exactly one
output vertex (the collapse history, resolved by pointer jumping), and each output vertex takes the colour of the
original vertex of its own cluster that lies nearest to its new position. Colours are therefore never blended
across a colour edge, and a cluster never borrows a colour from another part of the surface.
"""

from __future__ import annotations

import numpy as np

from microdreamer.mesh import Mesh

__all__ = ["RELEASED_TARGET_FACES", "decimate_mesh"]

RELEASED_TARGET_FACES = 50_000  # LGM convert.py / DreamGaussian: decimate_target = 5e4


def _cluster_of(n_vertices: int, collapses: np.ndarray) -> np.ndarray:
    """For each original vertex, the surviving vertex it was collapsed into (``collapses[i] = [kept, removed]``)."""
    parent = np.arange(n_vertices)
    if len(collapses):
        parent[collapses[:, 1]] = collapses[:, 0]
    while True:  # pointer jumping: chains i1 → i0 → i2 … resolve in O(log length) passes
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            return parent
        parent = nxt


def decimate_mesh(
    mesh: Mesh, target_faces: int = RELEASED_TARGET_FACES, *, aggressiveness: float = 7.0
) -> Mesh:
    """Quadric edge collapse down to at most ``target_faces`` faces; a mesh already that small is returned as is.

    ``aggressiveness`` is the library's ``agg`` (7 its default; lower keeps shape better and runs longer)."""
    target = int(target_faces)
    if target != target_faces or target < 1:
        raise ValueError(f"target_faces must be a positive integer, got {target_faces!r}")
    if len(mesh.faces) <= target:
        return mesh
    try:
        import fast_simplification
    except ImportError as exc:  # a core dependency; only a broken install lands here
        raise ImportError(
            "mesh decimation needs fast-simplification: pip install fast-simplification"
        ) from exc
    pts, faces, collapses = fast_simplification.simplify(
        mesh.vertices.astype(np.float64),
        mesh.faces.astype(np.int32),
        target_count=target,
        agg=aggressiveness,
        return_collapses=True,
    )
    roots = _cluster_of(len(mesh.vertices), np.asarray(collapses, dtype=np.int64))
    survivors = np.unique(roots)
    if len(survivors) == len(pts):
        # the library keeps surviving vertices in their original order, so a survivor's rank is its output index
        out_index = np.searchsorted(survivors, roots)
    else:  # a survivor lost all its faces: ask the library for the mapping instead
        _, _, out_index = fast_simplification.replay_simplification(
            mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32), collapses
        )
    # per output vertex: the cluster member nearest to its (moved) position
    d2 = ((mesh.vertices - pts[out_index]) ** 2).sum(1)
    order = np.lexsort((d2, out_index))
    first = np.ones(len(order), dtype=bool)
    first[1:] = out_index[order][1:] != out_index[order][:-1]
    nearest = np.empty(len(pts), dtype=np.int64)
    nearest[out_index[order][first]] = order[first]
    colors = mesh.colors[nearest]
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    return Mesh(pts.astype(np.float32), faces, colors.astype(np.float32))
