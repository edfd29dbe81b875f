"""The individual plan's use cases: read, write and review a case's plan, the case worker's
worklist of reviews, and the sweep that announces reviews falling due.

Each is one unit of work with the access-log row of the read or change. The plan's goals,
activities and review comments are sealed with the participant's data key, bound to the
participant, the plan and the version (`casework.plan.plan_context`).
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from asf_kit.auth import Principal
from asf_kit.logging import get_logger
from asf_kit.problems import not_found
from asf_kit.uow import UnitOfWork, check_version
from casework import plan_store, store
from casework.domain import Participant
from casework.plan import (
    PLAN,
    PLAN_REVIEW,
    Plan,
    PlanContent,
    PlanDue,
    PlanIn,
    PlanVersion,
    PlanView,
    Review,
    ReviewIn,
    plan_context,
    plan_timeline,
    review_context,
)
from casework.plan_store import SealedPlan
from casework.service import Casework, envelope, scope_of
from casework.timeline import TimelineItem
from casework.workdays import swedish_date

log = get_logger(__name__)


class PlanCases(Casework):
    """Casework's use cases of the individual plan (genomförandeplan)."""

    async def plan(self, participant_id: UUID, who: Principal) -> PlanView:
        """The case's plan, opened; 404 when the case has none yet."""
        async with self._work() as uow:
            p = await self._load(uow.conn, participant_id, who, lock=False, personal=True)
            loaded = await plan_store.load_plan(uow.conn, participant_id)
            await store.log_access(uow.conn, [participant_id], who.sub, "plan_read")
        if loaded is None:
            raise not_found("plan")
        self._open_plan(p, loaded)
        return PlanView.of(loaded.plan, swedish_date(self.now()))

    async def write_plan(self, participant_id: UUID, body: PlanIn, expected: int,
                         who: Principal) -> tuple[PlanView, bool]:
        """Write the plan (version 1 when `expected` is 0) or replace it; True when created."""
        now = self.now()
        async with self._work() as uow:
            p = await self._load(uow.conn, participant_id, who, personal=True)
            loaded = await plan_store.load_plan(uow.conn, participant_id, lock=True)
            check_version("plan", loaded.plan.version if loaded else 0, expected)
            if loaded is None:
                plan = Plan.write_first(p, body, who.sub, now, swedish_date(now))
            else:
                self._open_plan(p, loaded)
                plan = loaded.plan
                plan.rewrite(p, body, who.sub, now, swedish_date(now))
            await self._save_plan(uow, p, plan, new=loaded is None)
            await store.log_access(uow.conn, [p.id], who.sub, "plan_write")
        return PlanView.of(plan, swedish_date(now)), loaded is None

    async def review_plan(self, participant_id: UUID, body: ReviewIn, expected: int,
                          who: Principal) -> Review:
        """Record a review of the plan; it moves the plan to a new version."""
        now = self.now()
        async with self._work() as uow:
            p = await self._load(uow.conn, participant_id, who, personal=True)
            loaded = await plan_store.load_plan(uow.conn, participant_id, lock=True)
            if loaded is None:
                raise not_found("plan")
            check_version("plan", loaded.plan.version, expected)
            self._open_plan(p, loaded)
            review = loaded.plan.review(p, body, who.sub, now, swedish_date(now))
            await self._save_plan(uow, p, loaded.plan, new=False)
            await store.log_access(uow.conn, [p.id], who.sub, "plan_review")
        return review

    async def plans_due(self, who: Principal, *, assigned_to: str | None,
                        due_before: dt.date | None, after: tuple[dt.date, UUID] | None,
                        limit: int) -> list[PlanDue]:
        """Plans with a next review in the caller's municipality, soonest first."""
        async with self._work() as uow:
            found = await plan_store.list_plans(
                uow.conn, municipality_code=scope_of(who), assigned_to=assigned_to,
                due_before=due_before, today=swedish_date(self.now()), after=after, limit=limit)
            await store.log_access(uow.conn, [x.participant_id for x in found], who.sub,
                                   "plan_list")
        return found

    async def timeline(self, participant_id: UUID, who: Principal) -> list[TimelineItem]:
        """The case's timeline with the plan's rewrites, reviews and reviews falling due."""
        items = await super().timeline(participant_id, who)
        async with self.pool.acquire() as conn:
            history = await plan_store.plan_history(conn, participant_id)
        if history is None:
            return items
        return sorted(items + plan_timeline(history), key=lambda i: i.at)

    async def sweep_plan_reviews(self, on: dt.date, batch: int = 200) -> int:
        """Announce every plan review due on or before `on`, each review date exactly once.

        The announcement is noted (primary key: plan and date) in the transaction that
        writes its event, so sweeps running at once, or twice, announce nothing twice.
        """
        announced = 0
        while True:
            progressed = 0
            async with self._work() as uow:
                claimed = await plan_store.claim_due_reviews(uow.conn, on, batch)
                for participant_id in claimed:
                    case = await store.load_participant(uow.conn, participant_id)
                    loaded = await plan_store.load_plan(uow.conn, participant_id)
                    assert case is not None and loaded is not None
                    event = loaded.plan.review_due(case)
                    if event is None or not await plan_store.record_notice(
                            uow.conn, loaded.plan, self.now()):
                        continue
                    uow.publish(envelope(event))
                    progressed += 1
            announced += progressed
            if len(claimed) < batch or not progressed:
                break
        if announced:
            log.info("plan reviews due announced", count=announced, on=on.isoformat())
        return announced

    # --- sealing ----------------------------------------------------------------------

    def _open_plan(self, p: Participant, loaded: SealedPlan) -> None:
        """Open the plan's sealed content and review comments (left None once erased, or
        when they do not open)."""
        data_key = self._data_key(p)
        plan = loaded.plan
        if data_key is None or loaded.content is None:
            plan.content = None
            return
        content = self._open(data_key, p, PLAN, loaded.content,
                             plan_context(plan.id, plan.version))
        plan.content = PlanContent.model_validate(content) if content is not None else None
        for r in plan.reviews:
            blob = loaded.comments.get(r.id)
            comment = self._open(data_key, p, PLAN_REVIEW, blob, review_context(plan.id, r.id)) \
                if blob is not None else None
            r.comment = comment["comment"] if comment is not None else None

    async def _save_plan(self, uow: UnitOfWork, p: Participant, plan: Plan, *,
                         new: bool) -> None:
        """Seal what the plan added with the participant's key, and save it."""
        data_key = self._data_key(p)
        assert data_key is not None  # the plan refuses changes once erased
        sealed: dict[int, bytes] = {}
        comments: dict[UUID, bytes] = {}
        for x in plan.added:
            if isinstance(x, PlanVersion):
                sealed[x.version] = self.vault.seal(
                    data_key, p.id, PLAN, x.content.model_dump(mode="json"),
                    plan_context(plan.id, x.version))
            elif isinstance(x, Review) and x.comment is not None:
                comments[x.id] = self.vault.seal(data_key, p.id, PLAN_REVIEW,
                                                 {"comment": x.comment},
                                                 review_context(plan.id, x.id))
        await plan_store.save_plan(uow.conn, plan, new=new, sealed=sealed, comments=comments)
