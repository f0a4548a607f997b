"""Vectorised engine behind :func:`deapnn.operators.lexicase.lexicase` (validation, MAD, the
event loop).

See the module docstring of :mod:`deapnn.operators.lexicase` for why each shortcut keeps the
selection distribution exactly that of textbook lexicase selection (Spector 2012).
"""
from __future__ import annotations

from typing import cast

import numpy as np

from .lexicase_util import chunk_cols, clean, dynamic_keep, mad_1d, mad_columns, mad_rows

_STALL = 12          # consecutive no-op draws before a pool is finished on its own sub-matrix


# ----------------------------------------------------------------------------- de-duplication
class Groups:
    """Rows with byte-identical error vectors; a selected group yields a uniform random member.

    Rows are hashed (polynomial hash of their bytes, wrapping int64 arithmetic) and hash groups are
    verified byte-wise; ``None`` from :meth:`build` means every row is distinct.
    """

    @classmethod
    def build(cls, X):
        n = X.shape[0]
        Xi = np.ascontiguousarray(X).view(f"i{X.dtype.itemsize}")
        r = np.random.default_rng(0x1E71CA5E).integers(1, 2**62, size=X.shape[1])
        h = np.zeros(n, dtype=np.int64)
        step = chunk_cols(X)
        for i in range(0, X.shape[1], step):
            h += Xi[:, i:i + step].astype(np.int64, copy=False) @ r[i:i + step]
        _, first, inv, counts = np.unique(h, return_index=True, return_inverse=True,
                                          return_counts=True)
        if counts.size == n:
            return None
        inv = inv.reshape(-1)
        if not (Xi == Xi[first[inv]]).all():         # hash collision: exact grouping instead
            seen: dict[bytes, int] = {}
            inv = np.fromiter((seen.setdefault(row.tobytes(), len(seen)) for row in Xi),
                              dtype=np.intp, count=n)
            if len(seen) == n:
                return None
        return cls(inv)

    def __init__(self, inverse):
        self.inverse = inverse
        self.counts = np.bincount(inverse)
        self.order = np.argsort(inverse, kind="stable")
        self.starts = np.cumsum(self.counts) - self.counts
        self.reps = self.order[self.starts]


# ----------------------------------------------------------------------------- engine
def _narrow(span):
    for dt in (np.int8, np.int16, np.int32):
        if span < np.iinfo(dt).max:
            return dt
    return np.int64


def _integer_codes(X, rows, cases, *, exact):
    """Narrow, order-preserving codes of an integer error matrix for the dense copy ``Q``.

    Returns ``(dtype, padding, convert)`` where ``convert`` maps a block of ``X`` to codes
    ``0..padding-1`` (cast to ``dtype`` on assignment) and ``padding`` is worse than every code;
    ``None``: use float64 instead.  Codes are ``X - min`` when the range fits in int64 (computed
    without overflow for every integer dtype);
    a wider range (int64/uint64 spanning more than 2**63 - 1, e.g. ``sys.maxsize`` sentinels beside
    negatives) gets dense ranks in exact mode, float64 values under epsilon (whose thresholds are
    float64 anyway)."""
    lo, hi = int(X.min()), int(X.max())
    span = hi - lo
    if span < np.iinfo(np.int64).max:
        dt = _narrow(span + 1)
        if lo == 0:
            return dt, span + 1, lambda B: B
        if X.dtype == np.uint64:
            off = np.uint64(lo)
            return dt, span + 1, lambda B: B - off
        off = np.int64(lo)     # int64 difference; the true value fits, so wrap-around is exact
        return dt, span + 1, lambda B: B.astype(np.int64, copy=False) - off
    if not exact:
        return None
    u = np.unique(X[np.ix_(rows, cases)])
    dt = _narrow(u.size)
    return dt, u.size, lambda B: np.searchsorted(u, B)


class Engine:
    """One call of lexicase selection: ``Engine(...).run(k)`` returns k selected row indices.

    Pools hold *positions*: indices into ``self.rows`` (one representative row per group) plus the
    padding position ``G`` whose error is larger than every real one.  Cases are positions into
    ``self.cases``.  ``dense`` builds a transposed, cleaned, narrowed copy ``Q`` (cases x positions)
    and the is-elite lists of the first step; otherwise errors are read lazily from ``X``.
    """

    def __init__(self, X, cases, rng, *, eps=None, auto=False, dynamic=False, k=1, dedup=None,
                 dense=None):
        self.X, self.rng, self.dynamic = X, rng, dynamic
        # cases=None: all columns in order (saves index arrays as long as the case set)
        self.cases = None if cases is None else np.asarray(cases)
        n = X.shape[0]
        self.s = s = X.shape[1] if self.cases is None else self.cases.size
        self.fixed = eps
        self.eps_free = eps is None and not auto
        self.cache = np.full(X.shape[1], np.nan) if (auto and not dynamic) else None
        if dedup is None:
            dedup = k * n >= max(s, 1)
        # dynamic MAD counts duplicates, so dynamic mode always works on individual rows
        self.groups = Groups.build(X) if (dedup and not dynamic and n > 1) else None
        self.rows = self.groups.reps if self.groups is not None else np.arange(n)
        self.G = G = self.rows.size
        self.dense = (k * G >= 4 * s) if dense is None else bool(dense)
        self.big = np.inf if X.dtype.kind == "f" else np.iinfo(X.dtype).max
        self.rows_ext = np.append(self.rows, self.rows[0])
        self.budget = max(X.nbytes // 3, 1 << 16)    # bytes of per-batch working arrays
        self.Q: np.ndarray | None = None     # the dense copy, built by _build_q

    def _ids(self, cpos):
        return cpos if self.cases is None else self.cases[cpos]

    # -- data access (positions)
    def _eps(self, c):
        """Epsilon of case ids ``c`` (None in exact mode); MADs are computed lazily and cached."""
        if self.fixed is not None:
            return self.fixed[c]
        if self.cache is None:
            return None
        e = self.cache[c]
        miss = np.isnan(e)
        if miss.any():
            u = np.unique(c[miss])
            self.cache[u] = mad_columns(self.X, u)
            e = self.cache[c]
        return e

    def _build_q(self):
        X, rows, G = self.X, self.rows, self.G
        cases = np.arange(self.s) if self.cases is None else self.cases
        code = _integer_codes(X, rows, cases, exact=self.eps_free) if X.dtype.kind != "f" else None
        if code is None:
            dt, big, conv = np.float64, np.inf, None
        else:
            dt, big, conv = code
        Q = np.empty((cases.size, G + 1), dtype=dt)
        step = chunk_cols(self.X, G)
        for i in range(0, cases.size, step):
            blk = Q[i:i + step, :G]
            B = X[np.ix_(rows, cases[i:i + step])].T
            if conv is not None:
                blk[...] = conv(B)
            else:
                blk[...] = B
                np.copyto(blk, np.inf, where=np.isnan(blk))
        Q[:, G] = big
        self.Q, self.Qflat, self.big = Q, Q.reshape(-1), big
        if self.dynamic:     # first step of a dynamic event = population MAD on the full pool
            e = mad_columns(self.X[rows] if self.groups is not None else self.X, cases)
        else:
            e = self._eps(cases)
        self.eps_pos = None if e is None else np.asarray(e, dtype=np.float64)

    def _gather(self, cpos, pools):
        if self.Q is not None:
            if self.Q.dtype.itemsize < 8:     # flat gather is fastest for narrow codes
                return self.Qflat[pools + (cpos * (self.G + 1))[:, None]]
            return self.Q[cpos[:, None], pools]
        vals = clean(self.X[self.rows_ext[pools], self._ids(cpos)[:, None]])
        return np.where(pools < self.G, vals, self.big)

    def _eps_pos(self, cpos):
        if self.Q is not None:
            return None if self.eps_pos is None else self.eps_pos[cpos]
        return self._eps(self._ids(cpos))

    def _sub(self, pool):
        """(len(pool), n_cases) cleaned errors of the pool positions."""
        if self.Q is not None:
            return self.Q[:, pool].T
        if self.cases is None:
            return clean(self.X[self.rows[pool]])
        return clean(self.X[np.ix_(self.rows[pool], self.cases)])

    def _member(self, pos):
        rows, g = self.rows[pos], self.groups
        if g is None:
            return rows
        gi = g.inverse[rows]
        return g.order[g.starts[gi] + (self.rng.random(gi.size) * g.counts[gi]).astype(np.intp)]

    def _pick(self, pool):
        """Uniform choice among the *individuals* represented by the positions ``pool``."""
        if pool.size > 1:
            if self.groups is None:
                pool = pool[self.rng.integers(pool.size)][None]
            else:
                w = self.groups.counts[self.groups.inverse[self.rows[pool]]].astype(float)
                pool = pool[self.rng.choice(pool.size, p=w / w.sum())][None]
        return self._member(pool)[0]

    def _elites(self):
        """Survivors of each effective case from the full pool, padded with G: (n_eff, W0), sizes.

        Two chunked passes over ``Q`` (counts, then positions) keep temporaries small."""
        Q, G = cast(np.ndarray, self.Q), self.G     # run() calls this after _build_q set Q
        step = chunk_cols(self.X, G)
        thr = Q[:, :G].min(1).astype(np.float64 if self.eps_pos is not None else Q.dtype)
        if self.eps_pos is not None:
            thr += self.eps_pos
        cnt = np.concatenate([np.count_nonzero(Q[i:i + step, :G] <= thr[i:i + step, None], axis=1)
                              for i in range(0, Q.shape[0], step)])
        eff = np.flatnonzero(cnt < G) if not self.dynamic else np.arange(cnt.size)
        if eff.size == 0:
            return None, None
        sizes = cnt[eff]
        E = np.full((eff.size, int(sizes.max())), G, dtype=np.int32 if G < 2**31 - 1 else np.intp)
        for i in range(0, eff.size, step):
            cs = eff[i:i + step]
            r, c = np.nonzero(Q[cs, :G] <= thr[cs, None])
            E[i + r, np.arange(r.size) - (np.cumsum(sizes[i:i + step]) - sizes[i:i + step])[r]] = c
        return E, sizes

    # -- main
    def run(self, k):
        rng, n, s, G = self.rng, self.X.shape[0], self.s, self.G
        out = np.empty(k, dtype=np.intp)
        if s == 0 or G == 1:
            out[:] = rng.integers(n, size=k)
            return out
        if not self.dense and k <= 4:
            for i in range(k):
                out[i] = self._one_dynamic() if self.dynamic else self._one()
            return out
        E = None
        if self.dense:
            self._build_q()
            E, sizes0 = self._elites()
            if E is None:                      # no case separates anyone: uniform
                out[:] = rng.integers(n, size=k)
                return out
        W0 = E.shape[1] if E is not None else G
        per_event = 20 * W0 + (s if self.dynamic else 0)
        B = int(min(k, max(16, self.budget // per_event)))
        for start in range(0, k, B):
            b = min(B, k - start)
            slots = np.arange(start, start + b)
            if E is not None:
                ci = rng.integers(E.shape[0], size=b)     # dynamic: E has every case
                pools, sizes = E[ci], sizes0[ci]
            else:
                pools = np.broadcast_to(np.arange(G), (b, G)).copy()
                sizes = np.full(b, G)
            used = None
            if self.dynamic:
                used = np.zeros((b, s), dtype=bool)
                if E is not None:
                    used[np.arange(b), ci] = True
            self._loop(pools, sizes, used, slots, out, int(self.dynamic and E is not None))
        return out

    def _one(self):
        """One fixed-epsilon event on the lazy path (few events, many cases)."""
        rng, X, rows = self.rng, self.X, self.rows
        draws: np.ndarray | tuple[()]                  # case ids, drawn 16 at a time
        pool, stall, draws, j = np.arange(self.G), 0, (), 0
        while pool.size > 1:
            if stall >= _STALL:
                return self._fallback_fixed(pool)
            if j == len(draws):
                draws, j = self._ids(rng.integers(self.s, size=16)), 0
            c = draws[j]
            j += 1
            v = clean(X[rows[pool], c])
            thr = v.min()
            if self.fixed is not None:
                thr = thr + self.fixed[c]
            elif self.cache is not None:
                e = self.cache[c]
                if e != e:                     # NaN: not computed yet
                    e = self.cache[c] = mad_1d(X[:, c])[1]
                thr = thr + e
            keep = v <= thr
            if keep.all():
                stall += 1
            else:
                pool, stall = pool[keep], 0
        return self._member(pool)[0]

    def _one_dynamic(self):
        """One dynamic-epsilon event on the lazy path: each case at most once."""
        rng, X, rows, s = self.rng, self.X, self.rows, self.s
        pool, stall, used = np.arange(self.G), 0, np.zeros(s, dtype=bool)
        nused = 0
        while pool.size > 1:
            if stall >= _STALL or 2 * nused >= s:
                return self._fallback_dynamic(pool, used)
            c = int(rng.integers(s))
            while used[c]:
                c = int(rng.integers(s))
            used[c] = True
            nused += 1
            keep = dynamic_keep(clean(X[rows[pool], self._ids(c)]))
            if keep.all():
                stall += 1
            else:
                pool, stall = pool[keep], 0
        return self._member(pool)[0]

    def _loop(self, pools, sizes, used, slots, out, nused0=0):
        """Vectorised events; ``pools`` rows hold positions, filtered-out entries are ``G``."""
        rng, s, G = self.rng, self.s, self.G
        stall = np.zeros(slots.size, dtype=np.intp)
        nused = np.full(slots.size, nused0, dtype=np.intp)
        while True:
            fin = sizes <= 1
            if fin.any():
                done = np.flatnonzero(fin)
                out[slots[done]] = self._member(pools[done].min(1))
            fb = ~fin & (stall >= _STALL)
            if used is not None:
                fb |= ~fin & (2 * nused >= s)
            for i in np.flatnonzero(fb):
                pool = pools[i][pools[i] < G]
                out[slots[i]] = (self._fallback_dynamic(pool, used[i]) if used is not None
                                 else self._fallback_fixed(pool))
            keep = ~(fin | fb)
            if not keep.all():
                pools, sizes, stall, slots, nused = (
                    pools[keep], sizes[keep], stall[keep], slots[keep], nused[keep])
                if used is not None:
                    used = used[keep]
                if slots.size == 0:
                    return
            A, w = slots.size, int(sizes.max())
            if w <= 0.6 * pools.shape[1]:      # compact: survivors to the front, drop padding
                r, c = np.nonzero(pools < G)
                new = np.full((A, w), G, dtype=pools.dtype)
                new[r, np.arange(r.size) - (np.cumsum(sizes) - sizes)[r]] = pools[r, c]
                pools = new
            cpos = rng.integers(s, size=A)
            if used is not None:              # dynamic: each case at most once per event
                ar = np.arange(A)
                bad = np.flatnonzero(used[ar, cpos])
                while bad.size:
                    cpos[bad] = rng.integers(s, size=bad.size)
                    bad = bad[used[bad, cpos[bad]]]
                used[ar, cpos] = True
                nused += 1
            vals = self._gather(cpos, pools)
            if used is not None:
                mn, mad = mad_rows(vals, pools < G)
                thr = mn + mad
            else:
                thr = vals.min(1)
                e = self._eps_pos(cpos)
                if e is not None:
                    thr = thr + e
            np.putmask(pools, vals > thr[:, None], G)
            new = np.count_nonzero(pools < G, axis=1)
            stall += 1
            stall[new < sizes] = 0
            sizes = new

    def _fallback_fixed(self, pool):
        """Finish one event exactly: draw uniformly among the cases still effective for the pool."""
        rng = self.rng
        sub, cols = self._sub(pool), None
        while pool.size > 1:
            mn = sub.min(0)
            idx = np.flatnonzero((sub != mn).any(0))
            if idx.size == 0:
                break
            sub, cols, thr = sub[:, idx], (idx if cols is None else cols[idx]), mn[idx]
            e = self._eps_pos(cols)
            if e is not None:
                thr = thr + e
                eff = (sub > thr).any(0)
                if not eff.any():
                    break
                sub, cols, thr = sub[:, eff], cols[eff], thr[eff]
            j = rng.integers(cols.size)
            keep = sub[:, j] <= thr[j]
            pool, sub = pool[keep], sub[keep]
        return self._pick(pool)

    def _fallback_dynamic(self, pool, used_row):
        """Finish one dynamic-epsilon event: unused cases that are not constant on the pool."""
        rng = self.rng
        sub = self._sub(pool)[:, ~used_row]
        while pool.size > 1:
            idx = np.flatnonzero((sub != sub.min(0)).any(0))
            if idx.size == 0:
                break
            sub = sub[:, idx]
            j = rng.integers(idx.size)
            keep = dynamic_keep(sub[:, j])
            pool, sub = pool[keep], np.delete(sub[keep], j, axis=1)
        return self._pick(pool)
