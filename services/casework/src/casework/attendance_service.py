"""Attendance, rates and monthly statements: the use cases of the host company's rep, the
paying municipality's case workers, and the month's closing.

Who sees what: a company rep (`company_id` in the token) the placements at their company,
with only the participant's given name and family initial, and that company's
statements; a case worker the placements and statements of their municipality. Anyone
else asking about a placement or statement that exists is told it does not (404).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID, uuid4

from asf_kit.auth import Principal, Role
from asf_kit.logging import get_logger
from asf_kit.problems import Problem, forbidden, not_found
from asf_kit.problems import invalid as asf_invalid
from casework import attendance_store as ast
from casework import store
from casework.attendance import (
    AttendanceDay,
    AttendanceIn,
    AttendancePage,
    CorrectionIn,
    HostedPlacement,
    Rate,
    RateIn,
    RepPlacement,
    attendance_shares,
    family_initial,
    invalid,
    month_closed,
    report,
    report_errors,
)
from casework.crypto import WrappedKey
from casework.domain import SealedPersonalData
from casework.outcomes import Outcomes
from casework.service import PERSONAL, Casework, envelope, may_read_stats, scope_of
from casework.statements import (
    Statement,
    StatementLineView,
    StatementSummary,
    StatementView,
    issue,
)
from casework.workdays import Month, first_working_day, swedish_date

log = get_logger(__name__)

MAX_RANGE_DAYS = 366
"""The longest period of attendance read at once."""


def company_of(who: Principal) -> UUID:
    """The company a rep represents; 403 when the token names none."""
    if who.company_id is None:
        raise forbidden("a company rep's token must carry company_id")
    return who.company_id


def _sees(who: Principal, company_id: UUID, municipality_code: str) -> bool:
    """A rep sees their company's placements and statements, a case worker their
    municipality's."""
    if who.has(Role.CASE_WORKER) and scope_of(who) == municipality_code:
        return True
    return who.has(Role.COMPANY_REP) and company_of(who) == company_id


def _period(start: dt.date | None, end: dt.date | None, today: dt.date
            ) -> tuple[dt.date, dt.date]:
    """From `start` (the first of `end`'s month) to `end` (today): at most MAX_RANGE_DAYS."""
    last = end or today
    first = start or Month.of(last).first
    if last < first:
        raise asf_invalid("to" if end else "from", "the period ends before it starts")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise asf_invalid("to" if end else "from", f"a period is at most {MAX_RANGE_DAYS} days")
    return first, last


class AttendanceCases(Casework):
    """Casework's use cases of attendance, rates and statements."""

    # --- the rep's view -------------------------------------------------------------------

    async def company_placements(self, company_id: UUID, who: Principal, *,
                                 active: bool | None, after: tuple[dt.date, UUID] | None,
                                 limit: int) -> list[RepPlacement]:
        """Placements at the rep's own company; another company's is a 404."""
        if company_of(who) != company_id:
            raise not_found("company")
        async with self._work() as uow:
            found = await ast.company_placements(uow.conn, company_id, active=active,
                                                 after=after, limit=limit)
            people = await ast.sealed_people(uow.conn, [p.participant_id for p in found])
            await store.log_access(uow.conn, [p.participant_id for p in found], who.sub,
                                   "company_placements")
        return [self._rep_view(p, people.get(p.participant_id)) for p in found]

    def _rep_view(self, p: HostedPlacement, sealed: SealedPersonalData | None) -> RepPlacement:
        given, family = self._names(p.participant_id, sealed)
        return RepPlacement.of(p, given, family)

    def _names(self, participant_id: UUID, sealed: SealedPersonalData | None
               ) -> tuple[str | None, str | None]:
        """Given and family name, opened from the sealed data; (None, None) once erased."""
        if sealed is None:
            return None, None
        data_key = self.vault.unwrap(participant_id, WrappedKey(sealed.key_id, sealed.wrapped_key))
        personal: dict[str, Any] = self.vault.open(data_key, participant_id, PERSONAL,
                                                   sealed.document)
        return personal.get("given_name"), personal.get("family_name")

    async def _placement(self, conn: Any, placement_id: UUID, who: Principal, *,
                         share_lock: bool = False) -> HostedPlacement:
        p = await ast.hosted_placement(conn, placement_id, share_lock=share_lock)
        if p is None or not _sees(who, p.company_id, p.municipality_code):
            raise not_found("placement")
        return p

    # --- attendance -----------------------------------------------------------------------

    async def report_attendance(self, placement_id: UUID, day: dt.date, body: AttendanceIn,
                                who: Principal) -> tuple[AttendanceDay, bool]:
        """The rep reports (or corrects) one day; True when the day was not reported before.
        A closed month is a 409 naming its statement."""
        now = self.now()
        company = company_of(who)
        async with self._work() as uow:
            p = await self._placement(uow.conn, placement_id, who, share_lock=True)
            if p.company_id != company:
                raise not_found("placement")
            month = Month.of(day)
            await ast.lock_month(uow.conn, p.company_id, p.municipality_code, month)
            previous = await ast.attendance_on(uow.conn, p, day)
            reported = report(p, day, body, swedish_date(now), who.sub, now, previous)
            closed_by = await ast.current_statement(uow.conn, p.company_id,
                                                    p.municipality_code, month)
            if closed_by is not None:
                raise month_closed(month, closed_by)
            await ast.save_attendance(uow.conn, [reported])
            await store.log_access(uow.conn, [p.participant_id], who.sub, "attendance_report")
        return reported, previous is None

    async def attendance(self, placement_id: UUID, who: Principal, start: dt.date | None,
                         end: dt.date | None) -> AttendancePage:
        """The days reported from `start` to `end` (the month so far by default)."""
        period = _period(start, end, swedish_date(self.now()))
        async with self._work() as uow:
            p = await self._placement(uow.conn, placement_id, who)
            days = await ast.attendance_between(uow.conn, p, *period)
            closed = await ast.closed_months(uow.conn, p.company_id, p.municipality_code,
                                             *period)
            people = await ast.sealed_people(uow.conn, [p.participant_id])
            await store.log_access(uow.conn, [p.participant_id], who.sub, "attendance_read")
        return AttendancePage(items=days, placement=self._rep_view(
            p, people.get(p.participant_id)), closed_months=closed)

    # --- rates ----------------------------------------------------------------------------

    async def set_rate(self, body: RateIn, who: Principal) -> Rate:
        """A rate of the case worker's own municipality; 409 when one is valid from that date."""
        municipality = scope_of(who)
        if body.municipality_code not in (None, municipality):
            raise forbidden("a case worker sets the rates of their own municipality only")
        rate = Rate(id=uuid4(), municipality_code=municipality, kind=body.kind, unit=body.unit,
                    amount_sek=round(body.amount_sek, 2), valid_from=body.valid_from,
                    created_by=who.sub, created_at=self.now())
        async with self._work() as uow:
            if await ast.add_rate(uow.conn, rate) is None:
                existing = await ast.rate_from(uow.conn, municipality, body.kind,
                                               body.valid_from)
                raise Problem(
                    409, "Rate exists",
                    f"{municipality} already has a {body.kind} rate valid from "
                    f"{body.valid_from.isoformat()}; rates are not changed, a later one "
                    "takes over from its date", slug="rate-exists",
                    existing_id=str(existing) if existing else None)
        return rate

    async def rates(self, who: Principal, *, municipality_code: str | None, kind: str | None,
                    after: tuple[str, str, dt.date] | None, limit: int) -> list[Rate]:
        """An analyst reads every municipality's rates; a case worker their own."""
        municipality = may_read_stats(who, municipality_code)
        async with self.pool.acquire() as conn:
            return await ast.list_rates(conn, municipality_code=municipality, kind=kind,
                                        after=after, limit=limit)

    # --- closing the month ----------------------------------------------------------------

    async def close_due_months(self, today: dt.date) -> list[Statement]:
        """On or after the first working day of a month, close the previous one."""
        month = Month.of(today)
        if today < first_working_day(month):
            return []
        return await self.close_month(month.previous())

    async def close_month(self, month: Month, company_id: UUID | None = None
                          ) -> list[Statement]:
        """Issue the month's statement of every company and municipality that has none yet
        (of one company, when given). Exactly once each, whichever replica gets there first."""
        async with self.pool.acquire() as conn:
            pairs = await ast.months_to_close(conn, month, company_id)
        issued = []
        for company, municipality in pairs:
            statement = await self._close(company, municipality, month)
            if statement is not None:
                issued.append(statement)
        if issued:
            log.info("statements issued", month=str(month), count=len(issued))
        return issued

    async def _close(self, company_id: UUID, municipality_code: str, month: Month
                     ) -> Statement | None:
        async with self._work() as uow:
            await ast.lock_month(uow.conn, company_id, municipality_code, month)
            if await ast.current_statement(uow.conn, company_id, municipality_code, month):
                return None  # closed by another replica meanwhile
            statement = await self._issue(uow.conn, company_id, municipality_code, month)
            if statement is None or not await ast.add_statement(uow.conn, statement):
                return None
            uow.publish(envelope(statement.issued()))
        return statement

    async def _issue(self, conn: Any, company_id: UUID, municipality_code: str, month: Month,
                     by: str | None = None, supersedes: Statement | None = None,
                     reason: Any = None) -> Statement | None:
        placements = await ast.placements_in(conn, company_id, municipality_code, month)
        if not placements and supersedes is None:
            return None
        return issue(
            company_id=company_id, company_name=await ast.company_name(conn, company_id),
            municipality_code=municipality_code, month=month, placements=placements,
            reports=await ast.attendance_in(conn, placements, month),
            rates=await ast.rates_of(conn, municipality_code), at=self.now(),
            supersedes=supersedes, reason=reason, **({"by": by} if by else {}))

    async def correct_statement(self, statement_id: UUID, body: CorrectionIn,
                                who: Principal) -> Statement:
        """Correct a closed month's attendance and issue the statement again: a new statement
        that supersedes this one. Only the statement in force can be corrected (409 names
        the one that superseded it)."""
        now = self.now()
        async with self._work() as uow:
            found = await ast.get_statement(uow.conn, statement_id)
            if found is None or not _sees(who, found[0].company_id, found[0].municipality_code):
                raise not_found("statement")
            old = found[0]
            month = Month.parse(old.month)
            await ast.lock_month(uow.conn, old.company_id, old.municipality_code, month)
            refreshed = await ast.get_statement(uow.conn, statement_id)
            assert refreshed is not None
            if refreshed[1] is not None:
                raise Problem(
                    409, "Statement superseded",
                    f"statement {statement_id} was superseded by {refreshed[1]}; correct that one",
                    slug="statement-superseded", superseded_by=str(refreshed[1]))
            placements = {p.id: p for p in await ast.placements_in(
                uow.conn, old.company_id, old.municipality_code, month)}
            days = await self._corrected_days(uow.conn, body, placements, month, who, now)
            await ast.save_attendance(uow.conn, days)
            new = await self._issue(uow.conn, old.company_id, old.municipality_code, month,
                                    by=who.sub, supersedes=old, reason=body.reason)
            assert new is not None
            if not await ast.add_statement(uow.conn, new):
                raise Problem(409, "Statement superseded",
                              f"statement {statement_id} was corrected at the same time",
                              slug="statement-superseded")
            await store.log_access(uow.conn, sorted({placements[d.placement_id].participant_id
                                                     for d in days}), who.sub,
                                   "attendance_correct")
            uow.publish(envelope(new.issued()))
        log.info("statement corrected", statement_id=str(new.id), supersedes=str(old.id))
        return new

    async def _corrected_days(self, conn: Any, body: CorrectionIn,
                              placements: dict[UUID, HostedPlacement], month: Month,
                              who: Principal, now: dt.datetime) -> list[AttendanceDay]:
        """The corrected reports, or a 422 naming every bad entry's field."""
        errors: list[tuple[str, str]] = []
        seen: set[tuple[UUID, dt.date]] = set()
        for i, c in enumerate(body.attendance):
            at = f"attendance[{i}]."
            p = placements.get(c.placement_id)
            if p is None:
                errors.append((f"{at}placement_id",
                               f"no placement of this statement's company and municipality "
                               f"ran in {month}"))
            elif not month.first <= c.date <= month.last:
                errors.append((f"{at}date", f"is not in {month}"))
            elif (c.placement_id, c.date) in seen:
                errors.append((f"{at}date", "the same day is given twice"))
            else:
                errors += report_errors(p, c.date, c, swedish_date(now), prefix=at)
            seen.add((c.placement_id, c.date))
        if errors:
            raise invalid(errors)
        days = []
        for c in body.attendance:
            p = placements[c.placement_id]
            previous = await ast.attendance_on(conn, p, c.date)
            days.append(report(p, c.date, c, swedish_date(now), who.sub, now, previous))
        return days

    # --- reading statements ---------------------------------------------------------------

    def _scope(self, who: Principal) -> tuple[UUID | None, str | None]:
        """(company, municipality) a caller's statement lists are limited to."""
        if who.has(Role.CASE_WORKER):
            return None, scope_of(who)
        return company_of(who), None

    async def statements(self, who: Principal, *, company_id: UUID | None,
                         municipality_code: str | None, month: str | None, current: bool | None,
                         after: tuple[dt.datetime, UUID] | None, limit: int
                         ) -> list[StatementSummary]:
        """Statements in the caller's scope, newest first; a filter outside it finds nothing."""
        own_company, own_municipality = self._scope(who)
        if (own_company and company_id not in (None, own_company)) or (
                own_municipality and municipality_code not in (None, own_municipality)):
            return []
        async with self.pool.acquire() as conn:
            found = await ast.list_statements(
                conn, company_id=own_company or company_id,
                municipality_code=own_municipality or municipality_code, month=month,
                current=current, after=after, limit=limit)
        return [StatementSummary.of(s, by) for s, by in found]

    async def statement(self, statement_id: UUID, who: Principal) -> StatementView:
        """One statement with its lines and the given name and family initial of each line's
        participant (opened now: none once erased)."""
        async with self._work() as uow:
            found = await ast.get_statement(uow.conn, statement_id)
            if found is None or not _sees(who, found[0].company_id, found[0].municipality_code):
                raise not_found("statement")
            s, superseded_by = found
            participants = await ast.participants_of(uow.conn, [x.placement_id for x in s.lines])
            people = await ast.sealed_people(uow.conn, list(participants.values()))
            await store.log_access(uow.conn, sorted(set(participants.values())), who.sub,
                                   "statement_read")
        lines = []
        for x in s.lines:
            pid = participants[x.placement_id]
            given, family = self._names(pid, people.get(pid))
            lines.append(StatementLineView(**x.model_dump(), given_name=given,
                                           family_initial=family_initial(family)))
        summary = StatementSummary.of(s, superseded_by)
        return StatementView(**summary.model_dump(), lines=lines)

    # --- outcomes -------------------------------------------------------------------------

    async def outcomes(self, municipality: str | None, start: dt.date | None,
                       end: dt.date | None) -> Outcomes:
        """The outcome figures with the share of planned hours attended per placement kind."""
        figures = await super().outcomes(municipality, start, end)
        today = swedish_date(self.now())
        last = min(end, today) if end is not None else today
        async with self.pool.acquire() as conn:
            rows = await ast.placement_hours(conn, municipality, start, last)
        shares, suppressed = attendance_shares(rows, start, end, today, self.stats_min_group,
                                               all_municipalities=municipality is None)
        return figures.model_copy(update={"attendance": shares,
                                          "suppressed": figures.suppressed or suppressed})

