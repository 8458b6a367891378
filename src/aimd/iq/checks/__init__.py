"""The IQ checks, one module per area of 002 §6 (plan, environment, versions, service, reliability, logs).

Example
-------
>>> from aimd.iq.checks import Verdict
>>> Verdict("not_evaluated").name
'NOT_EVALUATED'
"""

from aimd.iq.checks.base import CheckResult, Deviation, IQCheck, IQContext, Verdict

__all__ = ["CheckResult", "Deviation", "IQCheck", "IQContext", "Verdict"]
