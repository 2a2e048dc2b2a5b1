"""Helpers shared by the interop scripts: payloads, JSON reporting."""
import json
import sys

# Mixed-width UTF-8 (1, 2, 3 and 4 bytes), so text is not just ASCII.
UNIT = "aé€😀"  # 10 bytes


def text_of(size):
    """A str whose UTF-8 encoding is exactly `size` bytes."""
    return UNIT * (size // 10) + "a" * (size % 10)


def bytes_of(size):
    """Deterministic binary data covering all byte values."""
    period = bytes((i * 31 + 7) & 0xFF for i in range(256))
    return (period * (size // 256 + 1))[:size]


def report(obj):
    """One JSON object per line on stdout, flushed at once (the test reads it live)."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
