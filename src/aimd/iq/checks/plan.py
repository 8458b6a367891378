"""The plan and the people (002 §6.1.1 b–c, §6.1.2 a–c): install flow complete, roles staffed, training assessed.

Example
-------
>>> from aimd.iq.template import protocol_template
>>> staffing_gaps(protocol_template())[:1]
['project manager: 0 of 1']
"""

from __future__ import annotations

from aimd.iq.checks.base import CheckResult, IQCheck, IQContext
from aimd.iq.protocol import RACI_ROLES, IQProtocol


def staffing_gaps(protocol: IQProtocol) -> list[str]:
    """Roles the personnel records do not fill, qualifications missing, training not assessed."""
    gaps = []
    for need in protocol.staffing:
        people = [
            p
            for p in protocol.personnel
            if p.role.lower() == need.role.lower() and (need.party == "both" or p.party == need.party)
        ]
        if len(people) < need.count:
            gaps.append(f"{need.role}: {len(people)} of {need.count}")
        if need.qualification_required:
            gaps += [f"{p.name}: no qualification recorded" for p in people if not p.qualification.strip()]
    for p in protocol.personnel:
        if not p.training:
            gaps.append(f"{p.name}: no training record")
        gaps += [f"{p.name}: training '{t.course}' not assessed" for t in p.training if not t.assessed]
    return gaps


class ProcessCheck(IQCheck):
    key = "plan.process"
    area = "resources"
    clause = "002 §4.1.2 a–h, §4.2, §6.1.1 b, App. A.2"
    title = "install flow a–h complete, each step owned by a role of the RACI matrix"
    impact = "steps without an owner or tasks are skipped or done twice"
    fix = "give every step tasks and a responsible role from the RACI matrix"

    def run(self, ctx: IQContext) -> CheckResult:
        p = ctx.protocol
        problems = [
            f"step {s.id}: responsible {s.responsible!r} is not a RACI role"
            for s in p.install_steps
            if s.responsible not in RACI_ROLES
        ]
        problems += [f"step {s.id}: no tasks" for s in p.install_steps if not any(t.strip() for t in s.tasks)]
        activities = {r.activity for r in p.raci}
        if not {"test and verification", "acceptance", "problem handling"} <= activities:
            problems.append("RACI lacks test, problem handling or acceptance")
        return self.judge(
            not problems,
            "8 steps with tasks and an owner; RACI covers test, problems, acceptance",
            f"{len(problems)} problems",
            reason="; ".join(problems) or "complete",
            evidence=[
                ctx.write_evidence(
                    "plan",
                    {"steps": [s.model_dump() for s in p.install_steps], "raci": [r.model_dump() for r in p.raci]},
                )
            ],
        )


class PeopleCheck(IQCheck):
    key = "plan.people"
    area = "resources"
    clause = "002 §4.1.3, §6.1.1 c, §6.1.2 a–c"
    title = "roles staffed, key roles qualified, training recorded and assessed"
    impact = "the installation may be done by people not trained for it"
    fix = "record the people, their qualifications and assessed training in the protocol's personnel"

    def run(self, ctx: IQContext) -> CheckResult:
        gaps = staffing_gaps(ctx.protocol)
        people = [p.model_dump() for p in ctx.protocol.personnel]
        return self.judge(
            not gaps,
            "every staffing role filled; training assessed",
            f"{len(people)} people, {len(gaps)} gaps",
            reason="; ".join(gaps) or "complete",
            evidence=[
                ctx.write_evidence(
                    "personnel",
                    {"staffing": [s.model_dump() for s in ctx.protocol.staffing], "personnel": people, "gaps": gaps},
                )
            ],
        )


PLAN_CHECKS: list[type[IQCheck]] = [ProcessCheck, PeopleCheck]

__all__ = ["PLAN_CHECKS", "PeopleCheck", "ProcessCheck", "staffing_gaps"]
