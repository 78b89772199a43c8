"""Compiled predictions of LightGBM boosters and isolation forests, bit-identical to the
libraries' own.

A decision round of the closed loop scores the whole fleet (about 2,000 rows) with three
hazard boosters of 100 trees and an isolation forest of 100 trees. LightGBM walks one
tree for one row at a time; on the fleet's rows its trees are deep (12 to 15 levels on
average for 31 leaves) and every level is a branch the CPU has to guess. The walks here
(numba, installed with ``shap``) avoid those guesses:

* **Boosters** — QuickScorer (Lucchese et al., SIGIR 2015), vectorised over rows: a
  tree's leaves are numbered left to right and each split node gets a bit mask that
  clears the leaves of its left subtree. A row's leaf in a tree is the leftmost leaf
  left after clearing the masks of every node at which the row goes right, and whether
  a row goes right at a node is one comparison, made for a block of rows at once
  (SIMD). Every node is tested, in no particular order; the leaf each row reaches is
  the one LightGBM reaches, and the leaf values are added per row in tree order as
  LightGBM adds them.
* **Isolation forests** — the trees' nodes laid out so that a step is
  ``node = child[2 · node + (x > threshold)]`` (a leaf is its own child), taken as many
  times as the tree is deep for a block of rows side by side, without branches.

LightGBM's decisions are reproduced as ``Tree::NumericalDecision`` makes them: NaN goes
the node's default direction when the node was trained with missing values, otherwise
it is read as 0.0; values within ±1e-35 are read as 0.0 (LightGBM drops them from the
row before predicting). Models this module does not reproduce — categorical splits,
``zero_as_missing`` splits, linear trees, random-forest averaging, trees of more than 64
leaves, objectives other than binary and multiclass softmax — make
:func:`booster_walker` return None, and callers keep the library's prediction.
``tests/guardian_lib/test_treewalk.py`` checks equality bit for bit on random and real
rows.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

__all__ = ["BoosterWalker", "ForestWalker", "booster_walker", "forest_walker"]

#: Rows compared at a node together (a SIMD loop); their masks stay in L1 cache. [rows]
_BLOCK = 64

# LightGBM's decision_type bits and zero threshold (include/LightGBM/tree.h, meta.h).
_CATEGORICAL = 1
_DEFAULT_LEFT = 2
_MISSING_ZERO, _MISSING_NAN = 1, 2
_ZERO_THRESHOLD = 1e-35


def _compiled(fn):
    """``numba.njit`` with the machine code cached on disk (next to this module, else in
    the user's cache folder): a process then loads it in ~0.5 s instead of compiling
    for ~1.5 s. Where neither folder is writable numba refuses to cache; the function
    is then compiled in each process."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)


@_compiled
def _quickscorer(X, node_feat, node_thr, node_tree, node_mask, node_nan_right, tree_class,
                 leaf_start, leaf_value, full, masks, block, out):  # fmt: skip
    """Add each tree's leaf value to ``out[row, tree_class[tree]]``, trees in order.

    ``full`` is the masks' all-bits value; ``masks`` (trees × _BLOCK, the masks' dtype)
    and ``block`` (features × _BLOCK, float64) are scratch space.
    """
    n, n_feat = X.shape
    n_trees = leaf_start.shape[0]
    for start in range(0, n, _BLOCK):
        nb = min(_BLOCK, n - start)
        for f in range(n_feat):
            for r in range(nb):
                x = X[start + r, f]
                # LightGBM keeps only |x| > kZeroThreshold (and NaN) of a dense row.
                block[f, r] = 0.0 if -_ZERO_THRESHOLD <= x <= _ZERO_THRESHOLD else x
        for t in range(n_trees):
            for r in range(nb):
                masks[t, r] = full
        for k in range(node_thr.shape[0]):
            x = block[node_feat[k]]
            thr = node_thr[k]
            keep = node_mask[k]
            v = masks[node_tree[k]]
            if node_nan_right[k]:
                # "not <=" is also true for NaN: the node sends NaN right.
                for r in range(nb):
                    if not (x[r] <= thr):
                        v[r] &= keep
            else:
                for r in range(nb):
                    if x[r] > thr:
                        v[r] &= keep
        for t in range(n_trees):
            base = leaf_start[t]
            c = tree_class[t]
            for r in range(nb):
                out[start + r, c] += leaf_value[base + trailing_zeros(masks[t, r])]


@_compiled
def _sigmoid(raw, sigmoid, out):
    # BinaryLogLoss::ConvertOutput: 1.0f / (1.0f + std::exp(-sigmoid_ * input)).
    for i in range(raw.shape[0]):
        out[i] = 1.0 / (1.0 + math.exp(-sigmoid * raw[i, 0]))


@_compiled
def _softmax(raw, out):
    # Common::Softmax: exp(x − max) / Σ, summed in class order.
    for i in range(raw.shape[0]):
        wmax = raw[i, 0]
        for k in range(1, raw.shape[1]):
            wmax = max(raw[i, k], wmax)
        wsum = 0.0
        for k in range(raw.shape[1]):
            out[i, k] = math.exp(raw[i, k] - wmax)
            wsum += out[i, k]
        for k in range(raw.shape[1]):
            out[i, k] /= wsum


@dataclass(frozen=True, eq=False)
class BoosterWalker:
    """A LightGBM model as QuickScorer tables; build it with :func:`booster_walker`.

    ``predict(X)`` equals ``booster.predict(X)`` bit for bit on float64 rows (binary:
    the positive-class probability, shape (n,); multiclass: the softmax, shape
    (n, n_class)); ``raw_score(X)`` equals ``booster.predict(X, raw_score=True)``.

    Attributes
    ----------
    objective : {'binary', 'multiclass'}
    n_class : int
        Outputs (1 for binary). [-]
    sigmoid : float
        Binary objective's sigmoid parameter. [-]
    n_features : int
        Columns of ``X`` (``max_feature_idx + 1``). [-]
    node_feat, node_thr, node_tree, node_mask, node_nan_right : ndarray
        Per split node: feature, threshold, tree, the mask clearing its left subtree's
        leaves, and whether it sends NaN right.
    tree_class, leaf_start : ndarray
        Per tree: its output column and the index of its first leaf in ``leaf_value``.
    leaf_value : ndarray
        Leaf values, each tree's in left-to-right order. [log-odds]
    """

    objective: str
    n_class: int
    sigmoid: float
    n_features: int
    node_feat: np.ndarray
    node_thr: np.ndarray
    node_tree: np.ndarray
    node_mask: np.ndarray
    node_nan_right: np.ndarray
    tree_class: np.ndarray
    leaf_start: np.ndarray
    leaf_value: np.ndarray

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """Sum of the trees' leaf values per row and class, shape (n, n_class). [log-odds]"""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"BoosterWalker: X must have shape (n, {self.n_features}), got {X.shape}"
            )
        out = np.zeros((len(X), self.n_class))
        full = ~self.node_mask.dtype.type(0)
        masks = np.empty((len(self.leaf_start), _BLOCK), dtype=self.node_mask.dtype)
        block = np.empty((self.n_features, _BLOCK))
        _quickscorer(X, self.node_feat, self.node_thr, self.node_tree, self.node_mask,
                     self.node_nan_right, self.tree_class, self.leaf_start, self.leaf_value,
                     full, masks, block, out)  # fmt: skip
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``booster.predict(X)``: probabilities. [-]"""
        raw = self.raw_score(X)
        if self.objective == "binary":
            out = np.empty(len(raw))
            _sigmoid(raw, self.sigmoid, out)
            return out
        out = np.empty_like(raw)
        _softmax(raw, out)
        return out


def _fields(lines) -> dict[str, str]:
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _tree_nodes(
    tree: dict[str, str], t: int, leaf_base: int, values: np.ndarray, nodes: list
) -> None:
    """Append tree ``t``'s split nodes to ``nodes`` and write its leaf values, left to
    right, to ``values[leaf_base:]``; raises :class:`_Unsupported` for a split the
    walker does not reproduce."""
    n_leaves = int(tree["num_leaves"])
    leaf_value = np.array([float(v) for v in tree["leaf_value"].split()][:n_leaves])
    if n_leaves == 1:
        values[leaf_base] = leaf_value[0]
        return
    m = n_leaves - 1
    feat = [int(v) for v in tree["split_feature"].split()][:m]
    # LightGBM writes doubles with 17 significant digits: float() restores them exactly.
    thr = [float(v) for v in tree["threshold"].split()][:m]
    dtype = [int(v) for v in tree["decision_type"].split()][:m]
    left = [int(v) for v in tree["left_child"].split()][:m]
    right = [int(v) for v in tree["right_child"].split()][:m]
    order: list[int] = []  # leaves, left to right

    def visit(child: int) -> tuple[int, int]:
        """(first in-order leaf, leaves) of the subtree at ``child``."""
        if child < 0:
            order.append(~child)
            return len(order) - 1, 1
        first, n_left = visit(left[child])
        _, n_right = visit(right[child])
        d = dtype[child]
        missing = (d >> 2) & 3
        if d & _CATEGORICAL or missing == _MISSING_ZERO:
            raise _Unsupported
        mask = ~(((1 << n_left) - 1) << first) & ((1 << 64) - 1)
        nan_right = not d & _DEFAULT_LEFT if missing == _MISSING_NAN else 0.0 > thr[child]
        nodes.append((feat[child], thr[child], t, mask, nan_right))
        return first, n_left + n_right

    visit(0)
    values[leaf_base : leaf_base + n_leaves] = leaf_value[order]


class _Unsupported(Exception):
    """A model feature the walker does not reproduce."""


def _parse_model(text: str) -> BoosterWalker | None:
    """A :class:`BoosterWalker` from LightGBM's model text (``model_to_string``)."""
    blocks = text.split("\nTree=")
    head_lines = blocks[0].splitlines()
    head = _fields(head_lines)
    objective = head.get("objective", "").split()
    if "average_output" in head_lines or not objective:
        return None  # random-forest mode averages the trees
    if objective[0] not in ("binary", "multiclass"):
        return None
    sigmoid = 1.0
    for part in objective[1:]:
        if part.startswith("sigmoid:"):
            sigmoid = float(part.split(":", 1)[1])
    n_class = int(head.get("num_class", "1"))
    if int(head.get("num_tree_per_iteration", "1")) != n_class:
        return None
    trees = [_fields(b.split("\nend of trees", 1)[0].splitlines()[1:]) for b in blocks[1:]]
    if not trees or len(trees) % n_class:
        return None
    if any(int(t.get("is_linear", "0")) or int(t["num_leaves"]) > 64 for t in trees):
        return None
    leaf_start = np.cumsum([0] + [int(t["num_leaves"]) for t in trees[:-1]])
    values = np.empty(sum(int(t["num_leaves"]) for t in trees))
    nodes: list[tuple] = []
    try:
        for t, tree in enumerate(trees):
            _tree_nodes(tree, t, int(leaf_start[t]), values, nodes)
    except _Unsupported:
        return None
    # Nodes by feature, then threshold: a block's comparisons read one row of ``block``.
    nodes.sort(key=lambda n: (n[0], n[1], n[2]))
    wide = any(int(t["num_leaves"]) > 32 for t in trees)
    mask_dtype = np.uint64 if wide else np.uint32
    return BoosterWalker(
        objective=objective[0],
        n_class=n_class,
        sigmoid=sigmoid,
        n_features=int(head["max_feature_idx"]) + 1,
        node_feat=np.array([n[0] for n in nodes], dtype=np.int64),
        node_thr=np.array([n[1] for n in nodes], dtype=np.float64),
        node_tree=np.array([n[2] for n in nodes], dtype=np.int64),
        node_mask=np.array([n[3] & int(np.iinfo(mask_dtype).max) for n in nodes], mask_dtype),
        node_nan_right=np.array([n[4] for n in nodes], dtype=np.bool_),
        tree_class=np.arange(len(trees), dtype=np.int64) % n_class,
        leaf_start=leaf_start.astype(np.int64),
        leaf_value=values,
    )


# Walkers built so far, per Booster object (a refit makes a new Booster).
_BOOSTER_WALKERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def booster_walker(booster) -> BoosterWalker | None:
    """The compiled predictor of a fitted ``lightgbm.Booster`` (built once per booster).

    Covers the iterations ``booster.predict`` uses by default (the best iteration when
    early stopping set one). None when the model has something the walker does not
    reproduce (see the module docstring).
    """
    try:
        return _BOOSTER_WALKERS[booster]
    except KeyError:
        pass
    walker = _parse_model(booster.model_to_string(num_iteration=None))
    _BOOSTER_WALKERS[booster] = walker
    return walker


@_compiled
def _forest_depths(X, root, depth, feat, thr, child, leaf_depth, nodes, out):
    """Add each tree's path length at the row's leaf to ``out[row]``, trees in order.

    scikit-learn's ``Tree.apply`` on float32 rows: a node sends a row right when
    ``X[row, feature] > threshold`` (the float32 value compared as a double). A leaf is
    its own child (threshold +inf), so ``depth[t]`` steps reach every row's leaf.
    ``nodes`` (_BLOCK ints) is scratch space.
    """
    n = X.shape[0]
    for start in range(0, n, _BLOCK):
        nb = min(_BLOCK, n - start)
        for t in range(root.shape[0]):
            for r in range(nb):
                nodes[r] = root[t]
            for _ in range(depth[t]):
                for r in range(nb):
                    node = nodes[r]
                    nodes[r] = child[2 * node + (X[start + r, feat[node]] > thr[node])]
            for r in range(nb):
                out[start + r] += leaf_depth[nodes[r]]


@dataclass(frozen=True, eq=False)
class ForestWalker:
    """An isolation forest as flat node arrays; build it with :func:`forest_walker`.

    ``path_lengths(X)`` is, per row, the sum over the trees of
    ``_decision_path_lengths[t][leaf] + _average_path_length_per_tree[t][leaf] − 1``,
    added in tree order (as :func:`guardian_lib.models.anomaly.forest_score_samples`).

    Attributes
    ----------
    n_features : int
        Columns of ``X``. [-]
    root, depth : ndarray
        Per tree: first node and depth. [-]
    feat, thr, child, leaf_depth : ndarray
        Per node: feature (a column of ``X``), threshold (+inf at leaves), children
        (``child[2n]`` left, ``child[2n + 1]`` right; a leaf's are itself) and the path
        length it adds when it is the row's leaf. [nodes]
    """

    n_features: int
    root: np.ndarray
    depth: np.ndarray
    feat: np.ndarray
    thr: np.ndarray
    child: np.ndarray
    leaf_depth: np.ndarray

    def path_lengths(self, X: np.ndarray) -> np.ndarray:
        """Summed path length per row of finite rows ``X`` (read as float32). [nodes]"""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"ForestWalker: X must have shape (n, {self.n_features}), got {X.shape}"
            )
        out = np.zeros(len(X))
        nodes = np.empty(_BLOCK, dtype=np.int64)
        _forest_depths(X, self.root, self.depth, self.feat, self.thr, self.child,
                       self.leaf_depth, nodes, out)  # fmt: skip
        return out


def _build_forest(forest) -> ForestWalker:
    roots, depths, feats, thrs, children, leaf_depths = [], [], [], [], [], []
    offset = 0
    for t, (est, cols) in enumerate(
        zip(forest.estimators_, forest.estimators_features_, strict=True)
    ):
        tree = est.tree_
        n = tree.node_count
        left = tree.children_left.astype(np.int64)
        right = tree.children_right.astype(np.int64)
        leaf = left < 0
        own = np.arange(n, dtype=np.int64)
        node_depth = np.zeros(n, dtype=np.int64)
        for node in range(n):  # scikit-learn numbers a parent before its children
            if not leaf[node]:
                node_depth[left[node]] = node_depth[right[node]] = node_depth[node] + 1
        roots.append(offset)
        depths.append(int(node_depth.max()))
        # Leaves keep feature -2 in scikit-learn; any column serves, +inf sends left.
        feats.append(
            np.where(leaf, 0, np.asarray(cols, dtype=np.int64)[np.maximum(tree.feature, 0)])
        )
        thrs.append(np.where(leaf, np.inf, tree.threshold))
        pair = np.empty(2 * n, dtype=np.int64)
        pair[0::2] = np.where(leaf, own, left) + offset
        pair[1::2] = np.where(leaf, own, right) + offset
        children.append(pair)
        # The value forest_score_samples adds per tree, computed the same way.
        leaf_depths.append(
            forest._decision_path_lengths[t] + forest._average_path_length_per_tree[t] - 1.0
        )
        offset += n
    return ForestWalker(
        n_features=int(forest.n_features_in_),
        root=np.array(roots, dtype=np.int64),
        depth=np.array(depths, dtype=np.int64),
        feat=np.concatenate(feats).astype(np.int64),
        thr=np.concatenate(thrs).astype(np.float64),
        child=np.concatenate(children),
        leaf_depth=np.concatenate(leaf_depths).astype(np.float64),
    )


# Walkers built so far, per forest, with the tree list they were built from (a refit
# replaces ``estimators_``).
_FOREST_WALKERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forest_walker(forest) -> ForestWalker:
    """The compiled walker of a fitted ``sklearn.ensemble.IsolationForest``."""
    entry = _FOREST_WALKERS.get(forest)
    if entry is None or entry[0] is not forest.estimators_:
        entry = (forest.estimators_, _build_forest(forest))
        _FOREST_WALKERS[forest] = entry
    return entry[1]
