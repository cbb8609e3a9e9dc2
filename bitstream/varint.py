"""Unsigned LEB128 varints and zigzag signed integers: small numbers cost one byte.

>>> out = bytearray()
>>> write_uvarint(300, out)
>>> write_svarint(-2, out)
>>> bytes(out)
b'\\xac\\x02\\x03'
>>> reader = Reader(bytes(out))
>>> reader.uvarint("a length"), reader.svarint("an offset")
(300, -2)
"""

from __future__ import annotations

from .errors import FieldRangeError, TruncatedError

MAX_VARINT_BYTES = 10  # enough for 64-bit values


def write_uvarint(value: int, out: bytearray) -> None:
    if value < 0:
        raise ValueError(f"uvarint cannot hold a negative value ({value})")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def zigzag(value: int) -> int:
    return (value << 1) if value >= 0 else ((-value << 1) - 1)


def unzigzag(value: int) -> int:
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)


def write_svarint(value: int, out: bytearray) -> None:
    write_uvarint(zigzag(value), out)


class Reader:
    """A cursor over bytes that raises TruncatedError instead of reading past the end."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None):
        self.data = memoryview(data)
        self.pos = pos
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.remaining:
            raise TruncatedError(f"file is truncated: {what} needs {n} bytes, {self.remaining} left")
        chunk = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return chunk

    def uvarint(self, what: str, maximum: int | None = None) -> int:
        value = shift = 0
        for _ in range(MAX_VARINT_BYTES):
            if self.pos >= self.end:
                raise TruncatedError(f"file is truncated inside {what}")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if maximum is not None and value > maximum:
                    raise FieldRangeError(f"{what} is {value}, above its limit {maximum}")
                return value
        raise FieldRangeError(f"{what} is not a valid varint (longer than {MAX_VARINT_BYTES} bytes)")

    def svarint(self, what: str, limit: int | None = None) -> int:
        value = unzigzag(self.uvarint(what))
        if limit is not None and abs(value) > limit:
            raise FieldRangeError(f"{what} is {value}, outside +-{limit}")
        return value
