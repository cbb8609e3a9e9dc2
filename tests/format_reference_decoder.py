"""An independent decoder of .sdz files (entropy models 1 and 2), written from bitstream/FORMAT.md alone.

It proves the document is complete: it imports nothing from the project (no codec, no bitstream,
no constriction), only the standard library and numpy, and follows the page's section numbers.
It is slow on purpose (plain Python loops); the golden vectors are small.

    header, symbols, latent = decode_file(data)

``header`` is a dict of the header fields, ``symbols`` (C, h, w) int64, ``latent`` (C, h, w) float32.
Any defect raises ``FormatError`` with the name of the rejecting rule as ``kind``.
"""

from __future__ import annotations

import bisect
import math
import zlib
from decimal import Context, Decimal

import numpy as np

# --- §1 conventions -----------------------------------------------------------------------


class FormatError(ValueError):
    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class Cursor:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None, truncated: str = "Truncated"):
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end
        self.truncated = truncated  # the rejection kind for running past the end

    @property
    def left(self) -> int:
        return self.end - self.pos

    def bytes(self, n: int, what: str) -> bytes:
        if n > self.left:
            raise FormatError(self.truncated, f"{what} needs {n} bytes, {self.left} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uvarint(self, what: str, limit: int | None = None, kind: str = "FieldRange") -> int:
        value = 0
        for index in range(10):
            if self.pos >= self.end:
                raise FormatError(self.truncated, f"file ends inside {what}")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                if limit is not None and value > limit:
                    raise FormatError(kind, f"{what} = {value} > {limit}")
                return value
        raise FormatError(kind, f"{what}: varint longer than 10 bytes")

    def svarint(self, what: str, limit: int, kind: str = "FieldRange") -> int:
        u = self.uvarint(what, kind=kind)
        value = u >> 1 if u % 2 == 0 else -((u + 1) >> 1)
        if abs(value) > limit:
            raise FormatError(kind, f"{what} = {value} outside +-{limit}")
        return value


def ceil8(x: int) -> int:
    return (x + 7) // 8


# --- §2 container ---------------------------------------------------------------------------

DEFAULT_MAX_PIXELS = 1 << 26
SPACES = {0: ("sd1", 4), 1: ("sdxl", 4), 2: ("sd3", 16), 3: ("flux1", 16), 4: ("flux2", 32), 127: ("raw", None)}


def parse_container(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    data = bytes(data)
    if data[:3] != b"SDZ":
        raise FormatError("BadMagic", "not an .sdz file")
    r = Cursor(data, 3)
    version = r.bytes(1, "version")[0]
    if version != 1:
        raise FormatError("UnknownVersion", f"version {version}")
    flags = r.uvarint("flags")
    if flags & ~0x3F:
        raise FormatError("FieldRange", f"unknown flags {flags:#x}")
    space_id = r.uvarint("latent space")
    if space_id not in SPACES:
        raise FormatError("FieldRange", f"unknown latent space id {space_id}")
    h = {"latent_space": SPACES[space_id][0], "flags": flags}
    h["width"] = r.uvarint("width", 1 << 20)
    h["height"] = r.uvarint("height", 1 << 20)
    c, lh, lw = r.uvarint("C", 1024), r.uvarint("h", 1 << 20), r.uvarint("w", 1 << 20)
    h["latent_shape"] = (c, lh, lw)
    h["step_code"] = r.uvarint("step_code", 1 << 40)
    h["recon_offset"] = r.uvarint("recon_offset", 64)
    h["channel_steps"] = tuple(r.uvarint("channel step", 255) for _ in range(c)) if flags & 8 else ()
    h["entropy_model"] = r.uvarint("entropy model", 65536)
    h["caption"] = ""
    if flags & 1:
        raw = r.bytes(r.uvarint("caption length", 1024), "caption")
        try:
            h["caption"] = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise FormatError("FieldRange", "caption is not UTF-8") from None
    h["has_restore_hints"] = bool(flags & 2)
    h["gray"] = bool(flags & 32)  # no field: decoders output one luma channel
    h["restore_steps"], h["restore_guidance_tenths"] = 0, 10
    if flags & 2:
        h["restore_steps"] = r.uvarint("restore steps", 1000)
        h["restore_guidance_tenths"] = r.uvarint("restore guidance", 1000)
    h["alpha"] = None
    if flags & 4:
        h["alpha"] = r.bytes(r.uvarint("alpha length", r.left), "alpha")
    metadata = r.bytes(r.uvarint("metadata length", r.left), "metadata") if flags & 16 else None
    h["payload"] = r.bytes(r.uvarint("payload length", r.left), "payload")
    crc_pos = r.pos
    stored = r.bytes(4, "crc32")
    if r.left:
        raise FormatError("TrailingBytes", f"{r.left} bytes after the CRC")
    if int.from_bytes(stored, "big") != zlib.crc32(data[:crc_pos]):
        raise FormatError("Checksum", "CRC-32 mismatch")
    # consistency, after the CRC
    if not (h["width"] >= 1 and h["height"] >= 1 and c >= 1 and lh >= 1 and lw >= 1):
        raise FormatError("FieldRange", "a size is 0")
    if c * lh * lw > 1 << 27:
        raise FormatError("FieldRange", "latent above 2**27 values")
    channels = SPACES[space_id][1]
    if channels is not None and (c != channels or lh != ceil8(h["height"]) or lw != ceil8(h["width"])):
        raise FormatError("FieldRange", "latent shape does not match the latent space and image size")
    if h["step_code"] < 1 or h["recon_offset"] > 31 or any(m < 1 for m in h["channel_steps"]):
        raise FormatError("FieldRange", "step_code, recon_offset or a channel step out of range")
    h["icc_profile"], h["exif"] = parse_metadata(metadata) if metadata is not None else (None, None)
    if h["gray"] and h["icc_profile"] is not None:
        raise FormatError("FieldRange", "a gray image with an ICC profile")
    # decoding ceiling
    if h["width"] * h["height"] > max_pixels or c * lh * lw > max_pixels // 2:
        raise FormatError("TooLarge", "above the decoding ceiling")
    return h


def webp_canvas(body: bytes) -> tuple[int, int] | None:
    """§2.4: the canvas a WebP declares, from its first 30 bytes."""
    if len(body) < 30 or body[:4] != b"RIFF" or body[8:12] != b"WEBP":
        return None
    tag = body[12:16]
    if tag == b"VP8 " and body[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(body[26:28], "little") & 0x3FFF, int.from_bytes(body[28:30], "little") & 0x3FFF
    if tag == b"VP8X":
        return int.from_bytes(body[24:27], "little") + 1, int.from_bytes(body[27:30], "little") + 1
    if tag == b"VP8L" and body[20] == 0x2F:
        b = int.from_bytes(body[21:25], "little")
        return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
    return None


def check_alpha_plane(alpha: bytes, width: int, height: int) -> str:
    """§2.4 up to the embedded image's declared size (decoding PNG/WebP pixels is out of scope here)."""
    if not alpha:
        raise FormatError("AlphaPlane", "empty")
    kind, body = alpha[0], alpha[1:]
    if kind == 0:
        if len(body) != 1:
            raise FormatError("AlphaPlane", "constant plane must hold one byte")
        return "constant"
    if kind == 1:
        if body[:8] != b"\x89PNG\r\n\x1a\n" or body[12:16] != b"IHDR":
            raise FormatError("AlphaPlane", "not a PNG")
        size = int.from_bytes(body[16:20], "big"), int.from_bytes(body[20:24], "big")
        if size != (width, height):
            raise FormatError("AlphaPlane", f"PNG declares {size}")
        return "png"
    if kind == 2:
        if webp_canvas(body) != (width, height):
            raise FormatError("AlphaPlane", f"WebP declares {webp_canvas(body)}")
        return "webp"
    raise FormatError("AlphaPlane", f"unknown kind {kind}")


# --- §2.5 metadata -----------------------------------------------------------------------------

MAX_ICC, MAX_EXIF = 4 * 1024 * 1024, 65527


def parse_metadata(section: bytes) -> tuple[bytes | None, bytes | None]:
    """(ICC profile or None, EXIF TIFF bytes or None) of a metadata section."""
    r = Cursor(section, truncated="Metadata")
    method = r.bytes(1, "metadata method")[0]
    icc_length = r.uvarint("ICC length", MAX_ICC, kind="Metadata")
    exif_length = r.uvarint("EXIF length", MAX_EXIF, kind="Metadata")
    total = icc_length + exif_length
    if total == 0:
        raise FormatError("Metadata", "neither ICC profile nor EXIF")
    body = section[r.pos :]
    if method == 0:
        raw = body
    elif method == 1:
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(body, total + 1)
        except zlib.error as exc:
            raise FormatError("Metadata", f"bad zlib stream ({exc})") from None
        if not inflater.eof or inflater.unused_data:
            raise FormatError("Metadata", "zlib stream does not end at the end of the section")
    else:
        raise FormatError("Metadata", f"method {method}")
    if len(raw) != total:
        raise FormatError("Metadata", f"{len(raw)} bytes, lengths declare {total}")
    icc, exif = raw[:icc_length], raw[icc_length:]
    if icc and (len(icc) < 128 or icc[36:40] != b"acsp" or int.from_bytes(icc[:4], "big") != len(icc)):
        raise FormatError("Metadata", "not an ICC profile")
    if exif and exif[:4] not in (b"II*\x00", b"MM\x00*"):
        raise FormatError("Metadata", "EXIF is not a TIFF stream")
    return icc or None, exif or None


# --- §3 dequantization ----------------------------------------------------------------------


def dequantize(symbols: np.ndarray, header: dict) -> np.ndarray:
    c = symbols.shape[0]
    multipliers = header["channel_steps"] or (16,) * c
    out = np.zeros(symbols.shape, dtype=np.float32)
    for ch in range(c):
        step = float(header["step_code"] * multipliers[ch]) / float(1 << 20)  # exact
        a = np.abs(symbols[ch]).astype(np.float64) - header["recon_offset"] / 64  # exact
        magnitude = (a * step).astype(np.float32)  # binary64 product, then binary32
        out[ch] = np.where(symbols[ch] > 0, magnitude, np.where(symbols[ch] < 0, -magnitude, np.float32(0)))
    return out


# --- §5 entropy model 1 ---------------------------------------------------------------------

THRESHOLDS = [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 90, 128, 181, 256, 362, 512, 724, 1024, 1448, 2048]
NUM_BUCKETS = len(THRESHOLDS) + 1
RATES = [
    2024, 5472, 12626, 25506, 46071, 75746, 115063, 163539, 219793, 281825,
    347350, 414105, 480073, 543613, 603509, 658954, 709502, 754997, 795503, 831242,
    862535, 889759, 913316, 933606, 951017, 965909, 978612, 989423, 998606, 1006394,
    1012990, 1018570, 1023286, 1027269, 1030629, 1033464, 1035854, 1037868, 1039564, 1040993,
    1042195, 1043208, 1044060, 1044777, 1045381, 1045889, 1046316, 1046675, 1046977, 1047231,
    1047445, 1047625, 1047776, 1047903, 1048010, 1048100, 1048176, 1048240, 1048293, 1048338,
    1048376, 1048408, 1048435, 1048457,
]  # fmt: skip


def rates_from_formula() -> list[int]:
    """§5.6's definition of RATE, for the test that the listed values follow from it."""
    ctx = Context(prec=40)  # a local context: the global decimal state is left alone
    out = []
    for s in range(64):
        scale = ctx.multiply(Decimal("0.04"), ctx.power(Decimal(2), ctx.divide(Decimal(s), Decimal(4))))
        rate = ctx.exp(ctx.divide(Decimal(-1), ctx.multiply(Decimal(4), scale)))
        out.append(int(ctx.multiply(rate, Decimal(1 << 20)).to_integral_value()))
    return out


class Table:
    """Tab[s][d], grown on demand by the §5.6 recurrence."""

    def __init__(self):
        self.rows = [[1 << 24] for _ in range(64)]

    def __call__(self, s: int, d: int) -> int:
        row = self.rows[s]
        while len(row) <= d:
            row.append(max(1, (row[-1] * RATES[s]) >> 20))
        return row[d]


def read_side_info(r: Cursor, n_channels: int) -> tuple[list[int], list[dict]]:
    scales, running = [], 0
    for _ in range(NUM_BUCKETS):
        running += r.svarint("bucket scale delta", 64, kind="Payload")
        if not 0 <= running <= 63:
            raise FormatError("Payload", f"bucket scale {running}")
        scales.append(running)
    channels = []
    for c in range(n_channels):
        low = r.svarint("low", 1 << 40, kind="Payload")
        high = low + r.uvarint("high - low", 512, kind="Payload")
        back = r.uvarint("back", c, kind="Payload")
        weights = [r.svarint("weight", 4096, kind="Payload") for _ in range(5)]
        bias = r.svarint("bias", 1 << 40, kind="Payload")
        offset = r.svarint("scale offset", 64, kind="Payload")
        channels.append(
            {"low": low, "high": high, "ref": c - back if back else -1, "w": weights, "bias": bias, "offset": offset}
        )
    return scales, channels


def decoding_order(h: int, w: int):
    """§5.4: wavefronts t = 2i + j, rows ascending inside a front."""
    for t in range(2 * (h - 1) + w):
        for i in range(max(0, -(-(t - w + 1) // 2)), min(h - 1, t // 2) + 1):
            yield i, t - 2 * i


def decode_model1(payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    n_channels, h, w = shape
    r = Cursor(payload, truncated="Payload")
    side_len = r.uvarint("side information length", kind="Payload")
    side = Cursor(payload, r.pos, r.pos + side_len, truncated="Payload")
    r.bytes(side_len, "side information")
    scales, channels = read_side_info(side, n_channels)
    if side.left:
        raise FormatError("Payload", "side information has unread bytes")
    esc_len = r.uvarint("escape stream length", kind="Payload")
    escapes = Cursor(payload, r.pos, r.pos + esc_len, truncated="Payload")
    r.bytes(esc_len, "escape stream")
    coded = payload[r.pos :]
    if len(coded) % 4:
        raise FormatError("Payload", "coded part is not whole 32-bit words")
    words = [int.from_bytes(coded[k : k + 4], "little") for k in range(0, len(coded), 4)]

    # §5.7 initial state
    pos = len(words)
    state = 0
    if pos:
        if words[-1] == 0:
            raise FormatError("Payload", "the coded part ends in a zero word")
        state, pos = words[-1], pos - 1
        if pos:
            state, pos = (state << 32) | words[pos - 1], pos - 1

    table = Table()
    values = [[[0] * w for _ in range(h)] for _ in range(n_channels)]
    errors = [[[0] * w for _ in range(h)] for _ in range(n_channels)]
    lefts_cache: dict[tuple[int, int, int], list[int]] = {}
    for c, p in enumerate(channels):
        low, high, ref = p["low"], p["high"], p["ref"]
        n = high - low + 3
        wW, wN, wNW, wNE, wREF = p["w"]
        v, e = values[c], errors[c]
        for i, j in decoding_order(h, w):
            west, e_west = (v[i][j - 1], e[i][j - 1]) if j > 0 else (0, 0)
            north = nw = ne = e_north = e_nw = e_ne = 0
            if i > 0:
                north, e_north = v[i - 1][j], e[i - 1][j]
                if j > 0:
                    nw, e_nw = v[i - 1][j - 1], e[i - 1][j - 1]
                if j < w - 1:
                    ne, e_ne = v[i - 1][j + 1], e[i - 1][j + 1]
            reference, e_ref = (values[ref][i][j], errors[ref][i][j]) if ref >= 0 else (0, 0)
            acc = wW * west + wN * north + wNW * nw + wNE * ne + wREF * reference + p["bias"]
            quarters = min(max((4 * acc + 32) // 64, 4 * (low - 1)), 4 * (high + 1))
            activity = 2 * e_west + 2 * e_north + e_nw + e_ne + 2 * e_ref
            bucket = bisect.bisect_right(THRESHOLDS, activity)
            s = min(max(scales[bucket] + p["offset"], 0), 63)

            # §5.6 row and its 24-bit quantization
            key = (n, s, quarters - 4 * (low - 1))
            left = lefts_cache.get(key)
            if left is None:
                f = [table(s, abs(4 * (low - 1 + k) - quarters)) for k in range(n)]
                scale = float((1 << 24) - n) / float(sum(f))
                left, cum = [], 0
                for k in range(n):
                    left.append(math.floor(float(cum) * scale) + k)
                    cum += f[k]
                left.append(1 << 24)
                lefts_cache[key] = left

            # §5.7 one ANS step
            quantile = state & ((1 << 24) - 1)
            k = bisect.bisect_right(left, quantile) - 1
            state = (state >> 24) * (left[k + 1] - left[k]) + (quantile - left[k])
            if state < 1 << 32 and pos > 0:
                state, pos = (state << 32) | words[pos - 1], pos - 1

            # §5.3 escapes
            value = low - 1 + k
            if k == 0 or k == n - 1:
                extra = escapes.uvarint("escaped value", 1 << 40, kind="Payload")
                value = low - 1 - extra if k == 0 else high + 1 + extra
            v[i][j] = value
            e[i][j] = min(abs(4 * value - quarters), 1 << 20)
    if pos != 0 or state != 0:
        raise FormatError("Payload", "coded data is left over after the last symbol")
    if escapes.left:
        raise FormatError("Payload", "unused escaped values")
    return np.array(values, dtype=np.int64).reshape(shape)


# --- §6 entropy model 2 ---------------------------------------------------------------------


def _model2_tables() -> tuple[list[int], list[int], list[int]]:
    """§6.1: SQUASH (index x + 2048), STRETCH (index p >> 4) and RECIPROCALS, every step at 20 digits."""
    ctx = Context(prec=20)
    squash = []
    for k in range(4097):
        x = ctx.divide(Decimal(k - 2048), 256)
        p = ctx.divide(Decimal(65536), ctx.add(1, ctx.exp(-x)))
        squash.append(min(max(int(p.to_integral_value()), 32), 65504))
    stretch = []
    for k in range(4096):
        p = ctx.divide(ctx.add(Decimal(k), Decimal("0.5")), 4096)
        x = ctx.multiply(256, ctx.ln(ctx.divide(p, ctx.subtract(1, p))))
        stretch.append(min(max(int(x.to_integral_value()), -2047), 2047))
    reciprocals = [131072 // (2 * n + 3) for n in range(1024)]
    return squash, stretch, reciprocals


def _clamp(x: int, limit: int) -> int:
    return min(max(x, -limit), limit)


class _BinaryDecoder:
    """§6.2."""

    def __init__(self, payload: bytes):
        self.data = payload
        self.low, self.high, self.pos = 0, 0xFFFFFFFF, 4
        self.x = 0
        for k in range(4):
            self.x = (self.x << 8) | self._byte(k)

    def _byte(self, k: int) -> int:
        return self.data[k] if k < len(self.data) else 255

    def bit(self, p: int) -> int:
        span = self.high - self.low
        mid = self.low + (span >> 16) * p + (((span & 0xFFFF) * p) >> 16)
        bit = 1 if self.x <= mid else 0
        if bit:
            self.high = mid
        else:
            self.low = mid + 1
        while (self.low ^ self.high) & 0xFF000000 == 0:
            self.x = ((self.x << 8) & 0xFFFFFFFF) | self._byte(self.pos)
            self.pos += 1
            self.low = (self.low << 8) & 0xFFFFFFFF
            self.high = ((self.high << 8) & 0xFFFFFFFF) | 255
        return bit

    def field(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit(32768)
        return value


def _bits(n: int) -> int:
    b = 0
    while (1 << b) < n:
        b += 1
    return b


def _update(state: int, bit: int, limit: int, reciprocals: list[int]) -> int:
    """§6.7: a counter state (p << 10) | n after bit."""
    n, p = state & 1023, state >> 10
    p += (((bit << 22) - p) * reciprocals[n]) >> 16
    if n < limit:
        n += 1
    return (p << 10) | n


SPATIAL_OFFSETS = [(0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0), (-2, 1), (-1, -2), (-1, 2), (-2, -1)]
REFERENCE_OFFSETS = [(0, 0), (0, -1), (-1, 0), (0, 1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1), (0, -2), (0, 2)]
REFERENCE_OFFSETS += [(-2, 0), (2, 0)]


def decode_model2(payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """§6: symbols (C, h, w) int64 of an entropy-model-2 payload."""
    squash_table, stretch, reciprocals = _model2_tables()

    def squash(x: int) -> int:
        return squash_table[_clamp(x, 2047) + 2048]

    def level(e: int) -> int:
        a = abs(e)
        v = 0 if a < 8 else (1 if a < 24 else (2 if a < 56 else 3))
        return v if e >= 0 else -v

    if not payload:
        raise FormatError("Payload", "the model-2 payload is empty")
    channels, h, w = shape
    dec = _BinaryDecoder(payload)
    # §6.3 channel order and references
    left = list(range(channels))
    order = [0] * channels
    for k in range(channels - 1):
        r = channels - k
        index = dec.field(_bits(r))
        if index >= r:
            raise FormatError("Payload", "channel order index out of range")
        order[k] = left[index]
        left[index] = left[r - 1]
    order[channels - 1] = left[0]
    refs: dict[int, list[int]] = {order[0]: []}
    for k in range(1, channels):
        n = dec.field(3)
        if n > min(k, 6):
            raise FormatError("Payload", "too many references")
        chosen = []
        for _ in range(n):
            t = dec.field(_bits(k))
            if t >= k:
                raise FormatError("Payload", "reference position out of range")
            chosen.append(order[t])
        refs[order[k]] = chosen

    # planes V and E, zero-padded by 2
    V = np.zeros((channels, h + 4, w + 4), dtype=np.int64)
    E = np.zeros((channels, h + 4, w + 4), dtype=np.int64)
    sizes = [256, 16 * channels, 196, 392, 224, 343, 196]
    counters = [[1 << 31] * (16 * size) for size in sizes]
    mixer = [[8192] * 8 for _ in range(64)]
    apm = [[squash((k - 16) * 128) * 16 for k in range(33)] for _ in range(64)]
    escape = [1 << 31] * 44
    weights = [0] * 49
    out = np.zeros(shape, dtype=np.int64)
    end = len(payload) + 3
    for k, c in enumerate(order):
        rc = refs[c]
        if k > 0:
            weights[10:] = [0] * 39
        for i in range(h):
            for j in range(w):
                y, x = i + 2, j + 2
                # §6.4 prediction
                f = [0] * 49
                f[48] = 8
                for m, (dy, dx) in enumerate(SPATIAL_OFFSETS):
                    f[m] = int(V[c, y + dy, x + dx])
                if rc:
                    for m, (dy, dx) in enumerate(REFERENCE_OFFSETS):
                        f[10 + m] = int(V[rc[0], y + dy, x + dx])
                for r in range(2, len(rc) + 1):
                    for m, (dy, dx) in enumerate(REFERENCE_OFFSETS[:5]):
                        f[23 + 5 * (r - 2) + m] = int(V[rc[r - 1], y + dy, x + dx])
                P = _clamp(sum(a * b for a, b in zip(weights, f)) >> 12, 32767 * 16)
                norm = 64 + sum(a * a for a in f)
                base = (P + 8) >> 4
                frac = P - 16 * base + 8
                quarter = frac >> 2
                # §6.5 activity and levels
                e_w, e_n = int(E[c, y, x - 1]), int(E[c, y - 1, x])
                e_nw, e_ne = int(E[c, y - 1, x - 1]), int(E[c, y - 1, x + 1])
                activity = 2 * abs(e_w) + 2 * abs(e_n) + abs(e_nw) + abs(e_ne)
                e_r = e_r2 = 0
                if rc:
                    e_r = int(E[rc[0], y, x])
                    activity += 2 * abs(e_r) + (abs(int(E[rc[0], y + 1, x])) + abs(int(E[rc[0], y, x + 1]))) // 2
                if len(rc) > 1:
                    e_r2 = int(E[rc[1], y, x])
                    activity += abs(e_r2)
                bucket, threshold = 0, 16
                while bucket < 15 and activity >= threshold:
                    bucket += 1
                    threshold = (3 * threshold) >> 1
                L = {name: level(e) + 3 for name, e in (("w", e_w), ("n", e_n), ("nw", e_nw), ("ne", e_ne))}
                L["r"], L["r2"] = level(e_r) + 3, level(e_r2) + 3
                cb = _clamp(base, 3) + 3
                # §6.7 contexts
                slots = [
                    bucket * 16 + frac,
                    c * 16 + bucket,
                    (L["w"] * 7 + L["n"]) * 4 + quarter,
                    (L["r"] * 7 + L["r2"]) * 8 + (bucket >> 1),
                    (cb * 4 + quarter) * 8 + (bucket >> 1),
                    (L["nw"] * 7 + L["ne"]) * 7 + L["r"],
                    ((_clamp(f[0] - base, 3) + 3) * 7 + _clamp(f[1] - base, 3) + 3) * 4 + quarter,
                ]
                # §6.6 binarisation, §6.8 probabilities
                place, sign, magnitude = 0, 0, 0
                while True:
                    row = min(place, 15)
                    s = [stretch[counters[t][slots[t] * 16 + row] >> 20] for t in range(7)]
                    s.append(256)
                    m_set = row * 4 + (bucket >> 2)
                    mw = mixer[m_set]
                    d = _clamp(sum(a * b for a, b in zip(mw, s)) >> 16, 2047)
                    p_mix = squash(d)
                    q = (d + 2048) * 32
                    lo, wt = q >> 12, q & 4095
                    T = apm[m_set]
                    p_apm = (T[lo] * (4096 - wt) + T[lo + 1] * wt) >> 16
                    p = min(max((p_mix + 3 * p_apm) >> 2, 32), 65504)
                    bit = dec.bit(p)
                    err = ((bit << 16) - p_mix) * 48
                    for m in range(8):
                        mw[m] = _clamp(mw[m] + ((s[m] * err) >> 24), 1 << 24)
                    for t in range(7):
                        index = slots[t] * 16 + row
                        counters[t][index] = _update(counters[t][index], bit, 30, reciprocals)
                    nearer = lo if wt < 2048 else lo + 1
                    T[nearer] += ((bit << 20) - T[nearer]) >> 6
                    if place == 0:
                        if bit == 0:
                            break
                    elif place == 1:
                        sign = bit
                    elif bit == 0:
                        magnitude = place - 1
                        break
                    place += 1
                    if place == 22:  # §6.9 escape
                        n = 0
                        while True:
                            bit = dec.bit(min(max(escape[n] >> 16, 32), 65504))
                            escape[n] = _update(escape[n], bit, 30, reciprocals)
                            if bit == 0:
                                break
                            n += 1
                            if n > 42:
                                raise FormatError("Payload", "escape code too long")
                        u = 1
                        for _ in range(n):
                            u = (u << 1) | dec.bit(32768)
                        magnitude = 21 + u - 1
                        break
                r_value = 0 if place == 0 else (magnitude if sign else -magnitude)
                v = base + r_value
                if abs(v) > 1 << 40:
                    raise FormatError("Payload", "decoded value out of range")
                if dec.pos > end:
                    raise FormatError("Payload", "coded data ends early")
                out[c, i, j] = v
                # §6.4 learning
                t_err = _clamp(16 * v - P, (activity >> 2) + 1024)
                V[c, y, x] = _clamp((P + t_err + 8) >> 4, 32767)
                E[c, y, x] = _clamp(t_err, 32767)
                g = (t_err << 21) // norm
                for m in range(49):
                    weights[m] = _clamp(weights[m] + ((g * f[m]) >> 12), 1 << 22)
    if dec.field(16) != 0xA53C or dec.pos != end:
        raise FormatError("Payload", "bad end marker or data left over")
    return out


# --- the whole file -------------------------------------------------------------------------


def decode_file(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[dict, np.ndarray, np.ndarray]:
    header = parse_container(data, max_pixels)
    if header["entropy_model"] not in (1, 2):
        raise FormatError("FieldRange", f"unknown entropy model {header['entropy_model']}")
    decode = decode_model1 if header["entropy_model"] == 1 else decode_model2
    symbols = decode(header["payload"], header["latent_shape"])
    if header["alpha"] is not None:
        header["alpha_kind"] = check_alpha_plane(header["alpha"], header["width"], header["height"])
    return header, symbols, dequantize(symbols, header)
