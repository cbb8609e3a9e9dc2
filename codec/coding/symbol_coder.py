"""Integer symbols (C, h, w) <-> payload bytes, under the file's entropy model.

Model 1 (``entropy_model`` + ``model_fitting``): static, fitted per file, coded with
constriction's ANS coder and decoded by the compiled kernel in ``symbol_decoder``.
Model 2 (``entropy_model2``): adaptive context mixing, coded and decoded by ``cm_coder``.
"""

from __future__ import annotations

import constriction
import numpy as np

from sdcodec.bitstream.errors import FieldRangeError, PayloadError, TruncatedError
from sdcodec.bitstream.varint import Reader, write_uvarint
from sdcodec.codec.coding import cm_coder, symbol_decoder
from sdcodec.codec.coding import entropy_model as em
from sdcodec.codec.coding.model_fitting import fit_model, read_side_info, write_side_info

ENTROPY_MODEL_ID = 1  # the model new files use
# 1: the static raster context model of entropy_model.py (decoder: symbol_decoder);
# 2: the adaptive context-mixing model of entropy_model2.py (coder: cm_coder).
ENTROPY_MODELS = (1, 2)

_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _order(height: int, width: int) -> np.ndarray:
    """Flat (unpadded) indices of all positions in coding order."""
    rows, cols = em.decode_order(height, width)
    return rows * width + cols


class _RowMakers:
    """One RowMaker per distinct alphabet size, shared by the channels that have it."""

    def __init__(self, model: em.ModelParams):
        self.table = em.probability_tables(em.table_size_for(model.channels))
        self.cache: dict[int, em.RowMaker] = {}

    def __call__(self, params: em.ChannelParams) -> em.RowMaker:
        size = params.high - params.low + 3
        if size not in self.cache:
            self.cache[size] = em.RowMaker(size, self.table)
        return self.cache[size]


def encode_symbols(q: np.ndarray, entropy_model: int | None = None) -> tuple[bytes, float]:
    """Payload bytes for integer symbols (C, h, w), and the model's ideal code length in bits.

    ``entropy_model`` is a model id (default ``ENTROPY_MODEL_ID``); model 2's "ideal" length is its payload's.
    """
    entropy_model = ENTROPY_MODEL_ID if entropy_model is None else entropy_model
    if entropy_model == 2:
        return cm_coder.encode_symbols(q)
    if entropy_model != 1:
        raise ValueError(f"unknown entropy model {entropy_model} (known: {ENTROPY_MODELS})")
    model, plans = fit_model(q)
    makers = _RowMakers(model)
    order = _order(q.shape[1], q.shape[2])
    escapes = bytearray()
    coder = constriction.stream.stack.AnsCoder()
    ideal_bits = 0.0
    per_channel = []
    for c, plan in enumerate(plans):
        p = plan.params
        values = q[c].ravel()[order]
        scales = model.scales_of_buckets(c)[plan.bucket[order]]
        symbols = np.clip(values, p.low - 1, p.high + 1) - (p.low - 1)
        rows = makers(p).rows(p, plan.quarters[order], scales)
        chosen = rows[np.arange(len(symbols)), symbols]
        ideal_bits += float(-np.log2(chosen / rows.sum(axis=1)).sum())
        for value in values[(values < p.low) | (values > p.high)]:
            write_uvarint(int(p.low - 1 - value if value < p.low else value - p.high - 1), escapes)
        per_channel.append((symbols.astype(np.int32), rows))
    for symbols, rows in reversed(per_channel):
        coder.encode_reverse(symbols, _FAMILY, rows)
    side = write_side_info(model)
    out = bytearray()
    write_uvarint(len(side), out)
    out += side
    write_uvarint(len(escapes), out)
    out += escapes
    ideal_bits += 8 * len(out)
    out += coder.get_compressed().astype("<u4").tobytes()
    return bytes(out), ideal_bits


def _sub_reader(reader: Reader, what: str) -> Reader:
    """A reader over the next length-prefixed section; the outer reader skips past it."""
    length = reader.uvarint(f"{what} length")
    section = Reader(reader.data, reader.pos, reader.pos + length)
    reader.take(length, what)
    return section


def decode_symbols(payload: bytes, shape: tuple[int, int, int], entropy_model: int | None = None) -> np.ndarray:
    """Inverse of ``encode_symbols``; any inconsistency raises ``bitstream.PayloadError``.

    Memory is the output plus 4 bytes a value; time is linear in the number of values.
    """
    entropy_model = ENTROPY_MODEL_ID if entropy_model is None else entropy_model
    if entropy_model == 2:
        return cm_coder.decode_symbols(payload, shape)
    if entropy_model != 1:
        raise FieldRangeError(f"unknown entropy model {entropy_model}")
    n_channels = shape[0]
    try:
        reader = Reader(payload)
        side = _sub_reader(reader, "side information")
        model = read_side_info(side, n_channels)
        if side.remaining:
            raise PayloadError("corrupt payload: side information has unread bytes")
        escapes = _sub_reader(reader, "escape stream")
    except (TruncatedError, FieldRangeError) as exc:
        raise PayloadError(f"corrupt payload: {exc}") from None
    words = payload[reader.pos :]
    if len(words) % 4:
        raise PayloadError("payload's coded part is not a whole number of 32-bit words")
    escape_bytes = payload[escapes.pos : escapes.end]
    status, symbols = symbol_decoder.decode(np.frombuffer(words, dtype="<u4"), escape_bytes, model, shape)
    if status != symbol_decoder.OK:
        raise PayloadError(f"corrupt payload: {symbol_decoder.MESSAGES[status]}")
    return symbols
