"""Tiny pure-Python reference codecs used as oracles in property tests."""


def varint_encode(value: int) -> bytes:
    """RFC 9000 §16 / Appendix A.1, written the obvious way."""
    for size, prefix in ((1, 0x00), (2, 0x40), (4, 0x80), (8, 0xC0)):
        if value < 1 << (8 * size - 2):
            raw = bytearray(value.to_bytes(size, "big"))
            raw[0] |= prefix
            return bytes(raw)
    raise ValueError(value)


def decode_packet_number(truncated: int, nbits: int, largest: int) -> int:
    """RFC 9000 Appendix A.3 pseudo-code."""
    expected = largest + 1
    win = 1 << nbits
    hwin = win // 2
    mask = win - 1
    candidate = (expected & ~mask) | truncated
    if candidate <= expected - hwin and candidate < (1 << 62) - win:
        return candidate + win
    if candidate > expected + hwin and candidate >= win:
        return candidate - win
    return candidate


def ranges_of(values: set[int]) -> list[range]:
    """Sorted maximal runs of consecutive integers."""
    out: list[range] = []
    for v in sorted(values):
        if out and out[-1].stop == v:
            out[-1] = range(out[-1].start, v + 1)
        else:
            out.append(range(v, v + 1))
    return out
