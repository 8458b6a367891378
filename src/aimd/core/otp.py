"""Time-based one-time codes (TOTP, RFC 6238: 30 s steps, 6 digits) on both sides of a login.

The verifier accepts a code of the current step or of one step either side (clock drift), and remembers
the step of the last code it accepted for an account: a code is good once (RFC 6238 §5.2), so a code seen
on the wire or over a shoulder cannot open a second session. A client that logs in to the same account
several times within a step (tests, the qualification run, a demo) takes each code from
:class:`OneTimeCodes`, which hands out every step once and waits for the next step when it must.

Example
-------
RFC 6238 Appendix B's SHA-1 secret ("12345678901234567890"), its codes at 59 s and 1111111109 s cut to 6 digits:

>>> secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
>>> code_at(secret, current_step(59)), code_at(secret, current_step(1111111109))
('287082', '081804')
>>> matched_step(secret, "287082", now_step=2), matched_step(secret, "287082", now_step=3)
(1, None)
"""

from __future__ import annotations

import hmac
import time

STEP_S = 30
DRIFT_STEPS = 1  # a code of one step before or after the verifier's own is accepted


def current_step(now: float | None = None) -> int:
    """The RFC 6238 time step of ``now`` (Unix seconds; the present when None)."""
    return int((time.time() if now is None else now) // STEP_S)


def code_at(secret: str, step: int) -> str:
    """The 6-digit code of base-32 ``secret`` for ``step``."""
    import pyotp

    return str(pyotp.TOTP(secret).generate_otp(step))


def matched_step(secret: str, code: str, *, now_step: int | None = None) -> int | None:
    """The step within the drift window whose code is ``code``, or None (compared in constant time)."""
    now_step = current_step() if now_step is None else now_step
    code = code.strip()
    found = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at(secret, step), code):
            found = step
    return found


class OneTimeCodes:
    """Codes for a client's logins: each step of a secret handed out once, the present one first."""

    def __init__(self, sleep=time.sleep) -> None:
        self._last: dict[str, int] = {}
        self._sleep = sleep

    def code(self, secret: str) -> str:
        """A code the verifier accepts and that this client has not used: the present step, else the
        next one (within the drift window), else the next after waiting for the step to turn."""
        now = current_step()
        step = max(now, self._last.get(secret, now - 1) + 1)
        if step > now + DRIFT_STEPS:
            self._sleep((step - DRIFT_STEPS) * STEP_S - time.time() + 0.05)
        self._last[secret] = step
        return code_at(secret, step)


ONE_TIME_CODES = OneTimeCodes()
"""The process's codes: every login of this process that needs a TOTP takes its code here."""


def next_code(secret: str | None) -> str | None:
    """The next unused code of ``secret`` for this process, or None without a secret."""
    return ONE_TIME_CODES.code(secret) if secret else None


__all__ = ["ONE_TIME_CODES", "STEP_S", "OneTimeCodes", "code_at", "current_step", "matched_step", "next_code"]
