"""How ``slot_stat_chunks`` holds a slot's stats: per chunk of markets, one compressed matrix.

A chunk is ``STAT_CHUNK_MARKETS`` consecutive markets (by position in the grid; the last chunk
may hold fewer). Its ``stats`` blob is the zstd frame of a field-major float64 matrix
``(15, n_markets)``: row ``j`` is ``STAT_FIELDS[j]`` of each of the chunk's markets, NaN for "no
value" (the API's ``None``). Field-major and zstd at level 1: a 10,000-house slot is 1.2 MB of
floats and about 0.45 MB stored, in about 2 ms; the fees and the zeros of houses without PV or
trades are what compresses.
"""

from __future__ import annotations

import threading

import numpy as np
import zstandard

from app.exchange.stats import STAT_FIELDS, SlotStats
from app.store.schema import STAT_CHUNK_MARKETS

N_FIELDS = len(STAT_FIELDS)
DTYPE = np.dtype("<f8")
ZSTD_LEVEL = 1
_local = threading.local()  # zstd (de)compressors are not thread-safe: one each per thread


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "compressor", None)
    if c is None:
        c = _local.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "decompressor", None)
    if d is None:
        d = _local.decompressor = zstandard.ZstdDecompressor()
    return d


def field_matrix(stats: SlotStats) -> np.ndarray:
    """The stats of every market as one field-major ``(15, n_markets)`` float64 matrix."""
    return np.stack([np.asarray(getattr(stats, name), dtype=DTYPE) for name in STAT_FIELDS])


def chunks(fields: np.ndarray) -> list[tuple[int, int, bytes]]:
    """``(chunk, n_markets, blob)`` of a ``field_matrix``, as ``slot_stat_chunks`` holds them."""
    compress = _compressor().compress
    out = []
    for chunk, start in enumerate(range(0, fields.shape[1], STAT_CHUNK_MARKETS)):
        part = np.ascontiguousarray(fields[:, start : start + STAT_CHUNK_MARKETS], dtype=DTYPE)
        out.append((chunk, part.shape[1], compress(part.tobytes())))
    return out


def unpack(blob: bytes, n_markets: int) -> np.ndarray:
    """A chunk's ``(15, n_markets)`` field-major matrix (read-only)."""
    raw = _decompressor().decompress(blob)
    return np.frombuffer(raw, dtype=DTYPE, count=N_FIELDS * n_markets).reshape(N_FIELDS, n_markets)


def stat_values(values: list[float]) -> dict[str, float | None]:
    """One market's 15 stats as the API answers them (NaN -> None)."""
    return dict(zip(STAT_FIELDS, [None if v != v else v for v in values], strict=True))
