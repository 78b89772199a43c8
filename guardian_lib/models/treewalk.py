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
from numba.cpython.unsafe.numbers import trailing_zeros

from guardian_lib._jit import compiled

__all__ = ["BoosterWalker", "ForestWalker", "booster_walker", "forest_walker"]

#: Rows compared at a booster's node together (a SIMD loop); their masks (trees × rows ×
#: 4 bytes, 77 KB for 150 trees) stay in L1 / L2 cache. 128 measured 1.4 ms per booster
#: of 150 trees on 2,148 rows, 64 1.7 ms, 256 1.5 ms. [rows]
_BLOCK = 128
#: Fewer rows than a block are walked in a block of a multiple of this many rows (a
#: float32 vector register of 512 bits): a decision round between two predictions of
#: the whole fleet re-predicts a few rows, and every node compares the block's rows
#: whether they are rows or padding (8 rows: 0.011 ms instead of 0.030 ms per booster).
#: [rows]
_MIN_BLOCK = 16


def _block_rows(n: int) -> int:
    """Rows walked together for a batch of ``n`` rows: :data:`_BLOCK`, or ``n`` rounded
    up to a multiple of :data:`_MIN_BLOCK` when that is fewer. Each row's result is the
    same for any block: a node's masks are cleared row by row. [rows]"""
    return min(_BLOCK, max(_MIN_BLOCK, -(-n // _MIN_BLOCK) * _MIN_BLOCK))


# LightGBM's decision_type bits and zero threshold (include/LightGBM/tree.h, meta.h).
_CATEGORICAL = 1
_DEFAULT_LEFT = 2
_MISSING_ZERO, _MISSING_NAN = 1, 2
_ZERO_THRESHOLD = 1e-35


@compiled
def _quickscorer(X, feat_start, node_thr, node_word, node_mask, node_nan_right, tree_class,
                 word_start, leaf_start, leaf_value, lgbm_zero, full, masks, block,
                 out):  # fmt: skip
    """Add each tree's leaf value to ``out[row, tree_class[tree]]``, trees in order.

    The split nodes are sorted by feature, then threshold; ``feat_start[f]`` is the
    first node of feature ``f``. A tree's leaves are the bits of its mask words
    ``word_start[t] … word_start[t + 1] − 1`` (lowest bit of the first word = leftmost
    leaf); a node clears the bits of its left subtree's leaves in word ``node_word``
    (a subtree spanning two words is two nodes). ``lgbm_zero`` reads values within
    ±1e-35 as 0.0 (LightGBM). ``full`` is the masks' all-bits value; ``masks`` (words ×
    rows of a block, the masks' dtype) and ``block`` (features × rows of a block) are
    scratch space, and their width is the rows walked together (:func:`_block_rows`).
    With a float32 ``block`` (and ``node_thr`` rounded down to float32) the comparisons
    are twice as wide; returns False, with ``out`` incomplete, when a value of ``X`` is
    not a float32, else True.
    """
    n, n_feat = X.shape
    rows = block.shape[1]
    n_trees = leaf_start.shape[0]
    n_words = word_start[n_trees]
    word_bits = masks.itemsize * 8
    one_word = n_words == n_trees
    n_class = out.shape[1]
    # Per block: each row's sum per class and its leaf in the tree at hand (contiguous,
    # so that a tree's leaves are looked up for the block's rows in one vector loop).
    acc = np.empty((n_class, rows))
    leaf = np.empty(rows, dtype=np.int64)
    for start in range(0, n, rows):
        nb = min(rows, n - start)
        masks[:n_words] = full
        for f in range(n_feat):
            x = block[f]
            top = -math.inf  # the block's largest value of the feature
            nan = False
            # Every block is ``rows`` long: the last one repeats row ``start`` past the
            # end, and only its first ``nb`` rows are read out.
            for r in range(rows):
                v = X[start + r if r < nb else start, f]
                # LightGBM keeps only |x| > kZeroThreshold (and NaN) of a dense row.
                if lgbm_zero and -_ZERO_THRESHOLD <= v <= _ZERO_THRESHOLD:
                    v = 0.0
                x[r] = v
                if v != v:
                    nan = True
                elif x[r] != v:
                    return False  # not a float32: the caller walks the float64 rows
                elif v > top:
                    top = v
            for k in range(feat_start[f], feat_start[f + 1]):
                thr = node_thr[k]
                # Thresholds ascend: from here on no row of the block goes right
                # (unless a NaN does, at a node that sends NaN right).
                if thr >= top and not nan:
                    break
                keep = node_mask[k]
                v = masks[node_word[k]]
                if node_nan_right[k]:
                    # "not <=" is also true for NaN: the node sends NaN right.
                    for r in range(rows):
                        v[r] &= full if x[r] <= thr else keep
                else:
                    for r in range(rows):
                        v[r] &= keep if x[r] > thr else full
        # The leaf values added per row in tree order, as out[row, class] += value.
        for c in range(n_class):
            for r in range(nb):
                acc[c, r] = out[start + r, c]
        for t in range(n_trees):
            base = leaf_start[t]
            a = acc[tree_class[t]]
            w0 = word_start[t]
            if one_word:
                m = masks[w0]
                for r in range(nb):
                    a[r] += leaf_value[base + trailing_zeros(m[r])]
            else:
                # The row's leaf is the lowest bit left in its first word with one (a
                # row's leaf is never cleared): words from the last to the first.
                for w in range(word_start[t + 1] - 1, w0 - 1, -1):
                    m = masks[w]
                    first = (w - w0) * word_bits
                    for r in range(nb):
                        if m[r] != 0:
                            leaf[r] = first + trailing_zeros(m[r])
                for r in range(nb):
                    a[r] += leaf_value[base + leaf[r]]
        for c in range(n_class):
            for r in range(nb):
                out[start + r, c] = acc[c, r]
    return True


@compiled
def _sigmoid(raw, sigmoid, out):
    # BinaryLogLoss::ConvertOutput: 1.0f / (1.0f + std::exp(-sigmoid_ * input)).
    for i in range(raw.shape[0]):
        out[i] = 1.0 / (1.0 + math.exp(-sigmoid * raw[i, 0]))


@compiled
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
        Per split node, sorted by feature then threshold: feature, threshold, tree, the
        mask clearing its left subtree's leaves, and whether it sends NaN right.
    feat_start : ndarray
        Index of each feature's first node (``n_features + 1`` entries). [-]
    node_thr32 : ndarray
        ``node_thr`` rounded down to float32: for a float32 value ``x``,
        ``x > node_thr`` exactly when ``x > node_thr32``.
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
    feat_start: np.ndarray
    node_thr32: np.ndarray

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """Sum of the trees' leaf values per row and class, shape (n, n_class). [log-odds]"""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"BoosterWalker: X must have shape (n, {self.n_features}), got {X.shape}"
            )
        full = ~self.node_mask.dtype.type(0)
        rows = _block_rows(len(X))
        masks = np.empty((len(self.leaf_start), rows), dtype=self.node_mask.dtype)
        words = np.arange(len(self.leaf_start) + 1, dtype=np.int64)  # one word per tree
        # Features are float32 (widened to float64 for LightGBM): compared as float32,
        # twice as many rows fit a vector register; any other value walks as float64.
        for dtype, thr in ((np.float32, self.node_thr32), (np.float64, self.node_thr)):
            out = np.zeros((len(X), self.n_class))
            block = np.empty((self.n_features, rows), dtype=dtype)
            if _quickscorer(X, self.feat_start, thr, self.node_tree, self.node_mask,
                            self.node_nan_right, self.tree_class, words, self.leaf_start,
                            self.leaf_value, True, full, masks, block, out):  # fmt: skip
                break
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
    """Append tree ``t``'s split nodes to ``nodes`` (in post-order: the left subtree's,
    the right subtree's, then the node) and write its leaf values, left to right, to
    ``values[leaf_base:]``; raises :class:`_Unsupported` for a split the walker does not
    reproduce."""
    n_leaves = int(tree["num_leaves"])
    leaf_value = np.array(list(map(float, tree["leaf_value"].split()))[:n_leaves])
    if n_leaves == 1:
        values[leaf_base] = leaf_value[0]
        return
    m = n_leaves - 1
    feat = list(map(int, tree["split_feature"].split()))[:m]
    # LightGBM writes doubles with 17 significant digits: float() restores them exactly.
    thr = list(map(float, tree["threshold"].split()))[:m]
    dtype = list(map(int, tree["decision_type"].split()))[:m]
    left = list(map(int, tree["left_child"].split()))[:m]
    right = list(map(int, tree["right_child"].split()))[:m]
    if not all(c < 0 or c > i for i, c in enumerate(left)) or not all(
        c < 0 or c > i for i, c in enumerate(right)
    ):
        raise _Unsupported  # LightGBM numbers a split after its parent's
    # Bottom-up (children after their parent): leaves and splits under each split.
    leaves, splits = [0] * m, [0] * m
    for i in range(m - 1, -1, -1):
        a, b = left[i], right[i]
        leaves[i] = (1 if a < 0 else leaves[a]) + (1 if b < 0 else leaves[b])
        splits[i] = 1 + (0 if a < 0 else splits[a]) + (0 if b < 0 else splits[b])
    # Top-down: the first leaf (left to right) and the first post-order place of each
    # split's subtree.
    first, place = [0] * m, [0] * m
    order = [0] * n_leaves  # leaves, left to right
    post: list[tuple | None] = [None] * m
    for i in range(m):
        a, b = left[i], right[i]
        n_left = 1 if a < 0 else leaves[a]
        if a < 0:
            order[first[i]] = ~a
        else:
            first[a], place[a] = first[i], place[i]
        if b < 0:
            order[first[i] + n_left] = ~b
        else:
            first[b] = first[i] + n_left
            place[b] = place[i] + (0 if a < 0 else splits[a])
        d = dtype[i]
        missing = (d >> 2) & 3
        if d & _CATEGORICAL or missing == _MISSING_ZERO:
            raise _Unsupported
        mask = ~(((1 << n_left) - 1) << first[i]) & ((1 << 64) - 1)
        nan_right = not d & _DEFAULT_LEFT if missing == _MISSING_NAN else 0.0 > thr[i]
        post[place[i] + splits[i] - 1] = (feat[i], thr[i], t, mask, nan_right)
    nodes.extend(post)
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
    wide = any(int(t["num_leaves"]) > 32 for t in trees)
    mask_dtype = np.uint64 if wide else np.uint32
    node_feat, node_thr, node_tree, node_mask, node_nan_right = _sorted_nodes(nodes, mask_dtype, 5)
    n_features = int(head["max_feature_idx"]) + 1
    return BoosterWalker(
        objective=objective[0],
        n_class=n_class,
        sigmoid=sigmoid,
        n_features=n_features,
        node_feat=node_feat,
        node_thr=node_thr,
        node_tree=node_tree,
        node_mask=node_mask,
        node_nan_right=node_nan_right,
        tree_class=np.arange(len(trees), dtype=np.int64) % n_class,
        leaf_start=leaf_start.astype(np.int64),
        leaf_value=values,
        feat_start=np.searchsorted(node_feat, np.arange(n_features + 1)).astype(np.int64),
        node_thr32=_round_down32(node_thr),
    )


def _sorted_nodes(nodes: list[tuple], mask_dtype: type, n_cols: int) -> tuple[np.ndarray, ...]:
    """The split nodes ``(feature, threshold, tree or word, mask[, nan_right])`` as
    arrays, sorted by feature, then threshold, then tree (or word), ties in the order
    given: a block's comparisons read one row of ``block``, and the walk leaves a
    feature at the first threshold above all of the block's rows. The masks are cut to
    ``mask_dtype``'s width."""
    cols = list(zip(*nodes, strict=True)) if nodes else [()] * n_cols
    feat = np.array(cols[0], dtype=np.int64)
    thr = np.array(cols[1], dtype=np.float64)
    third = np.array(cols[2], dtype=np.int64)
    width = int(np.iinfo(mask_dtype).max)
    mask = np.array([m & width for m in cols[3]], dtype=mask_dtype)
    order = np.lexsort((third, thr, feat))  # stable: last key first
    out = [feat[order], thr[order], third[order], mask[order]]
    if n_cols > 4:
        out.append(np.array(cols[4], dtype=np.bool_)[order])
    return tuple(out)


def _round_down32(thr: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each threshold. For a float32 ``x`` (and NaN),
    ``x > thr`` equals ``x > _round_down32(thr)``: no float32 lies strictly between
    them. [-]"""
    with np.errstate(over="ignore"):
        down = thr.astype(np.float32)  # nearest, maybe above (±inf past float32's range)
    above = down.astype(np.float64) > thr
    down[above] = np.nextafter(down[above], np.float32(-np.inf))
    return down


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


@dataclass(frozen=True, eq=False)
class ForestWalker:
    """An isolation forest as QuickScorer tables; build it with :func:`forest_walker`.

    ``path_lengths(X)`` is, per row, the sum over the trees of
    ``_decision_path_lengths[t][leaf] + _average_path_length_per_tree[t][leaf] − 1``,
    added in tree order (as :func:`guardian_lib.models.anomaly.forest_score_samples`).
    A tree's leaves (up to a few hundred) are the bits of several mask words.

    Attributes
    ----------
    n_features : int
        Columns of ``X``. [-]
    feat_start : ndarray
        Index of each feature's first node (``n_features + 1`` entries). [-]
    node_thr32, node_word, node_mask : ndarray
        Per split node and mask word its left subtree covers, sorted by feature then
        threshold: the threshold rounded down to float32 (a float32 row goes right when
        it is above), the word and the mask that clears those leaves.
    word_start, leaf_start : ndarray
        Per tree: its first mask word (and the total at the end) and its first leaf in
        ``leaf_value``. [-]
    leaf_value : ndarray
        Path length added at each leaf, each tree's left to right. [nodes]
    """

    n_features: int
    feat_start: np.ndarray
    node_thr32: np.ndarray
    node_word: np.ndarray
    node_mask: np.ndarray
    word_start: np.ndarray
    leaf_start: np.ndarray
    leaf_value: np.ndarray

    def path_lengths(self, X: np.ndarray) -> np.ndarray:
        """Summed path length per row of finite rows ``X`` (read as float32). [nodes]"""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"ForestWalker: X must have shape (n, {self.n_features}), got {X.shape}"
            )
        out = np.zeros((len(X), 1))
        rows = _block_rows(len(X))
        masks = np.empty((int(self.word_start[-1]), rows), dtype=self.node_mask.dtype)
        block = np.empty((self.n_features, rows), dtype=np.float32)
        nan_right = np.zeros(len(self.node_word), dtype=np.bool_)
        tree_class = np.zeros(len(self.leaf_start), dtype=np.int64)
        full = ~self.node_mask.dtype.type(0)
        _quickscorer(X, self.feat_start, self.node_thr32, self.node_word, self.node_mask,
                     nan_right, tree_class, self.word_start, self.leaf_start, self.leaf_value,
                     False, full, masks, block, out)  # fmt: skip
        return out[:, 0]


#: Bits of a forest's mask word: as wide as the float32 values compared with it. [-]
_FOREST_WORD = np.uint32


def _build_forest(forest) -> ForestWalker:
    bits = np.dtype(_FOREST_WORD).itemsize * 8
    nodes: list[tuple[int, float, int, int]] = []
    word_start, leaf_start, values = [0], [0], []
    for t, (est, cols) in enumerate(
        zip(forest.estimators_, forest.estimators_features_, strict=True)
    ):
        tree = est.tree_
        left, right = tree.children_left, tree.children_right
        # Leaves numbered left to right: (first leaf, leaves) of every node's subtree.
        first = np.zeros(tree.node_count, dtype=np.int64)
        count = np.zeros(tree.node_count, dtype=np.int64)
        order: list[int] = []
        stack = [(0, False)]
        while stack:
            node, done = stack.pop()
            if left[node] < 0:
                first[node], count[node] = len(order), 1
                order.append(node)
            elif done:
                first[node] = first[left[node]]
                count[node] = count[left[node]] + count[right[node]]
            else:
                stack += [(node, True), (int(right[node]), False), (int(left[node]), False)]
        w0 = word_start[-1]
        for node in np.flatnonzero(left >= 0):
            lo = int(first[node])
            hi = lo + int(count[left[node]])
            f = int(cols[tree.feature[node]])
            for w in range(lo // bits, (hi - 1) // bits + 1):
                a, b = max(lo, w * bits) - w * bits, min(hi, (w + 1) * bits) - w * bits
                mask = ~(((1 << (b - a)) - 1) << a) & ((1 << bits) - 1)
                nodes.append((f, float(tree.threshold[node]), w0 + w, mask))
        # The value forest_score_samples adds per tree, computed the same way.
        depth = forest._decision_path_lengths[t] + forest._average_path_length_per_tree[t] - 1.0
        values.append(np.asarray(depth, dtype=np.float64)[order])
        word_start.append(w0 + -(-len(order) // bits))
        leaf_start.append(leaf_start[-1] + len(order))
    node_feat, node_thr, node_word, node_mask = _sorted_nodes(nodes, _FOREST_WORD, 4)
    n_features = int(forest.n_features_in_)
    return ForestWalker(
        n_features=n_features,
        feat_start=np.searchsorted(node_feat, np.arange(n_features + 1)).astype(np.int64),
        node_thr32=_round_down32(node_thr),
        node_word=node_word,
        node_mask=node_mask,
        word_start=np.array(word_start, dtype=np.int64),
        leaf_start=np.array(leaf_start[:-1], dtype=np.int64),
        leaf_value=np.concatenate(values),
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
