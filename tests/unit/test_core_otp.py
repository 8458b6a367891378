"""The client side of one-time codes: each step handed out once, the present first, waiting only when the
drift window has no unused step left."""

from __future__ import annotations

import time

import pytest

from aimd.core.otp import STEP_S, OneTimeCodes, code_at, current_step, matched_step

SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


def _step_of(code: str, around: int) -> int | None:
    return matched_step(SECRET, code, now_step=around)


def test_codes_take_the_present_step_then_the_next_then_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [STEP_S * 1000 + 3.0]  # 3 s into step 1000
    monkeypatch.setattr(time, "time", lambda: clock[0])
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    codes = OneTimeCodes(sleep=sleep)
    first, second = codes.code(SECRET), codes.code(SECRET)
    assert (_step_of(first, 1000), _step_of(second, 1000)) == (1000, 1001) and slept == []
    third = codes.code(SECRET)  # step 1002 is outside the window until step 1001 begins: wait for it
    assert slept and 26.9 < slept[0] < 27.1 and current_step() == 1001
    assert third == code_at(SECRET, 1002) and _step_of(third, current_step()) == 1002
    clock[0] += 5 * STEP_S  # long after: the present step again, never one behind
    assert _step_of(codes.code(SECRET), current_step()) == current_step()


def test_a_wrong_or_stale_code_matches_no_step() -> None:
    now = current_step()
    assert matched_step(SECRET, code_at(SECRET, now - 2), now_step=now) is None
    assert matched_step(SECRET, code_at(SECRET, now + 2), now_step=now) is None
    assert matched_step(SECRET, " " + code_at(SECRET, now) + " ", now_step=now) == now
    assert matched_step(SECRET, "12345", now_step=now) is None
