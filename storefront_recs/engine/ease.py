"""EASE (Steck 2019), an item-item regression in closed form, for catalogues up to a size limit.

``B = I - P diag(1 / diag P)`` with ``P = (X'X + lambda I)^-1`` and a zero diagonal; a user's
scores are ``x_u B``. One dense inverse of the Gram matrix of the items that have interactions
(a Cholesky factorisation and inverse with LAPACK), so it is fitted only when there are at most
``RECS_EASE_MAX_ITEMS`` of them. Serving keeps each row's ``k`` weights largest in magnitude
(a sparse items x items matrix) and sums the rows of the visitor's items.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

from .fitting import top_k_per_row


def active_items(user_items: sparse.csr_matrix) -> np.ndarray:
    """Indexes of the items with at least one interaction."""
    return np.flatnonzero(np.bincount(user_items.indices, minlength=user_items.shape[1]))


def fits(user_items: sparse.csr_matrix, max_items: int) -> bool:
    """Whether EASE is fitted for this matrix (some interactions, at most ``max_items`` items)."""
    return user_items.nnz > 0 and 0 < len(active_items(user_items)) <= max_items


def ease_weights(user_items: sparse.csr_matrix, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """The dense EASE matrix over the active items, and those items' indexes.

    Fitted on the binary matrix (an interaction counts once, whatever its strength), as in
    the paper: strength weights make the Gram matrix dominated by a few heavy users.
    """
    active = active_items(user_items)
    x = user_items[:, active].astype(np.float32)
    x.data[:] = 1.0
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += lam
    chol, info = lapack.spotrf(gram, lower=True, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: Cholesky factorisation failed (info={info})")
    p, info = lapack.spotri(chol, lower=True, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inverse failed (info={info})")
    _fill_upper(p)  # spotri fills one triangle
    p /= -np.diag(p)[np.newaxis, :]  # in place: at 8,000 items each copy of P is 270 MB
    np.fill_diagonal(p, 0.0)
    return p, active


def _fill_upper(a: np.ndarray, block: int = 512) -> None:
    """Copy the lower triangle of the square ``a`` onto its upper one, in place, block by block."""
    n = len(a)
    for start in range(0, n, block):
        end = min(start + block, n)
        a[start:end, end:] = a[end:, start:end].T
        diag = a[start:end, start:end]
        upper = np.triu(np.ones(diag.shape, dtype=bool), 1)
        diag[upper] = diag.T[upper]


def top_k_abs(b: np.ndarray, active: np.ndarray, n: int, k: int, block: int = 256) -> sparse.csr_matrix:
    """``top_k_per_row`` of the nonzero ``|b|`` (rows and columns mapped through ``active``): each
    row's ``k`` largest, ties by column, without sorting all of ``b`` (a lexsort of every
    entry was seconds at 2,000 items and grows with the square of the catalogue); each block of
    rows is cut at its k-th largest with ``np.partition`` and only the kept entries are sorted."""
    m = len(active)
    kk = min(k, m)
    rows_out, cols_out, data_out = [], [], []
    for start in range(0, m if kk > 0 else 0, block):
        a = np.abs(b[start : start + block])
        kth = -np.partition(-a, kk - 1, axis=1)[:, kk - 1 : kk]
        above = a > kth
        tied = a == kth  # the k-th value may be tied: the lowest columns win, as in a stable sort
        keep = above | (tied & (np.cumsum(tied, axis=1) <= kk - above.sum(axis=1, keepdims=True)))
        r, c = np.nonzero(keep & (a > 0))
        rows_out.append(r + start)
        cols_out.append(c)
        data_out.append(a[r, c])
    if not rows_out:
        return sparse.csr_matrix((n, n), dtype=np.float32)
    r, c, d = np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(data_out)
    return top_k_per_row(active[r], active[c], d, n, k)


def fit_ease(user_items: sparse.csr_matrix, lam: float, k: int) -> sparse.csr_matrix:
    """Items x items: each row's ``k`` EASE weights largest in magnitude, with their signs (the
    negative ones carry "people with this do not take that"; keeping them ranked better than
    keeping only positive ones on the quality benchmark's validation split)."""
    n = user_items.shape[1]
    b, active = ease_weights(user_items, lam)
    kept = top_k_abs(b, active, n, k)
    position = np.full(n, -1, dtype=np.int64)
    position[active] = np.arange(len(active))
    kept_rows = np.repeat(np.arange(n), np.diff(kept.indptr))
    kept.data = b[position[kept_rows], position[kept.indices]].astype(np.float32)
    return kept


def empty(n_items: int) -> sparse.csr_matrix:
    """The EASE matrix of a bundle without EASE: no weights."""
    return sparse.csr_matrix((n_items, n_items), dtype=np.float32)


def user_scores(weights: sparse.csr_matrix, item_idxs: np.ndarray, item_weights: np.ndarray | None = None) -> np.ndarray:
    """Scores of every item for a visitor with these items: the sum of their rows."""
    rows = weights[np.asarray(item_idxs, dtype=np.int64)]
    if item_weights is not None:
        rows = sparse.diags(np.asarray(item_weights, dtype=np.float32)) @ rows
    return np.asarray(rows.sum(axis=0)).ravel()
