"""The pages, one module per kind of work."""

from __future__ import annotations

from fastapi import APIRouter

from web.routes import (
    account,
    analyst,
    attendance,
    audit,
    caseload,
    cases,
    companies,
    home,
    links,
    notices,
    plan,
    public,
    rates,
)

ROUTERS: tuple[APIRouter, ...] = (
    home.router, account.router, caseload.router, cases.router, companies.router,
    analyst.router, notices.router, audit.router, links.router,
    public.router, plan.router, attendance.router, rates.router,
)
