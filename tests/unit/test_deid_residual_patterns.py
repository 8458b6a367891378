"""The residual scan's phone and resident-ID patterns are searched only around runs of 11+ digits, its
e-mail pattern only around an "@": what they find must be what a search of the whole text finds, for any
text (prefixes, separators, UIDs, check characters, runs at either end), pixel data of digit bytes too."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aimd.imaging.deid.residual import _EMAIL, _MOBILE, _RESIDENT, ResidualScanner, _patterns

PIECES = st.sampled_from(
    [b"1", b"3", b"8", b"0", b"9", b"86", b"+86", b"+86 ", b"+86-", b"138", b"0013", b"8000", b"11010519491231",
     b"002", b"x", b"X", b".", b"-", b" ", b"a", b"\\", b"\x00", b"19", b"20", b"1231", b"@", b"wang.li",
     b"a" * 40, b"hospital", b".cn", b".com", b"%", b"+", b"_", b"@@", b"z9"]
)  # fmt: skip


def _whole(low: bytes) -> set[str]:
    found = {"EMAIL"} if _EMAIL.search(low) else set()
    if _MOBILE.search(low):
        found.add("PHONE")
    if _RESIDENT.search(low):
        found.add("RESIDENT_ID")
    return found


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=30))
def test_windowed_number_patterns_find_what_the_whole_text_search_finds(pieces: list[bytes]) -> None:
    low = b"".join(pieces).lower()
    assert _patterns(low) == _whole(low)


def test_numbers_and_emails_are_found_at_either_end_but_not_inside_uids_or_words() -> None:
    for text, kinds in (
        (b"13800138000", {"PHONE"}),
        (b"tel +86-13800138000.", {"PHONE"}),
        (b"id 11010519491231002x", {"RESIDENT_ID"}),
        (b"11010519491231002X and 13912345678", {"PHONE", "RESIDENT_ID"}),
        (b"1.2.840.13800138000.5", set()),  # a UID component is not a phone number
        (b"913800138000", set()),  # 12 digits: not a mobile number
        (b"13800138000.5", set()),  # nor a number that a UID component goes on after
        (b"11010519491231002x1", set()),  # nor an ID with more after its check character
        (b"a.13800138000", {"PHONE"}),
        (b"1.2.5.13800138000", set()),  # the last component of a UID
        (b"ab13800138000", set()),  # the tail of a word
        (b"no numbers here", set()),
        (b"mail: wang.li@hospital.example.cn.", {"EMAIL"}),
        (b"@" + b"a" * 70 + b"@x.cn", {"EMAIL"}),  # one e-mail among many "@"
        (b"a" * 80 + b"@x.cn", {"EMAIL"}),  # a local part longer than 64: its last 64 bytes match
        (b"wang@x.c0m", set()),  # no top-level domain
    ):
        assert _patterns(text.lower()) == kinds, text


def test_a_pixel_block_of_digit_bytes_is_scanned_by_runs() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0x30, 0x3A, 1 << 19, dtype=np.uint8)  # every byte an ASCII digit
    pixels[rng.integers(0, pixels.size, 40_000)] = 0  # runs broken often, as in smooth 8-bit images
    data = b"header 1.2.840.10008.5.1.4.1.1.2 " + pixels.tobytes()
    low = data.lower()
    assert _patterns(low) == _whole(low)
    assert ResidualScanner({}).scan_bytes(data) == sorted(_whole(low))
