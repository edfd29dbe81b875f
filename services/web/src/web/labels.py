"""Every code the APIs use, as words (SPEC 3.4: codes shown as words).

The texts are marked with `N_` and translated where they are shown (`label()`).
"""

from __future__ import annotations

from web.i18n import N_, gettext

LABELS: dict[str, dict[str, str]] = {
    "stage": {
        "referred": N_("Anvisad"),
        "assessment": N_("Kartläggning"),
        "in_training": N_("Arbetsträning"),
        "employed": N_("Anställd"),
        "closed": N_("Avslutad"),
    },
    "exit_reason": {
        "studies": N_("Studier"),
        "other_programme": N_("Annan insats"),
        "sick_leave": N_("Sjukskrivning"),
        "moved": N_("Flyttat"),
        "dropped_out": N_("Avbrutit"),
        "unknown": N_("Okänd orsak"),
    },
    "referral_source": {
        "social_services": N_("Socialtjänsten"),
        "employment_service": N_("Arbetsförmedlingen"),
        "social_insurance": N_("Försäkringskassan"),
        "coordination_association": N_("Samordningsförbund"),
        "self": N_("Egen anmälan"),
    },
    "placement_kind": {
        "work_training": N_("Arbetsträning"),
        "enhanced_work_training": N_("Utökad arbetsträning"),
        "internship": N_("Praktik"),
        "daily_activity": N_("Daglig verksamhet"),
    },
    "placement_end_reason": {
        "completed": N_("Genomförd"),
        "employed": N_("Fick anställning"),
        "interrupted": N_("Avbruten"),
        "company_deregistered": N_("Företaget avregistrerat"),
        "case_closed": N_("Ärendet avslutat"),
        "other": N_("Annat"),
    },
    "placement_status": {
        "active": N_("Pågår"),
        "ended": N_("Avslutad"),
    },
    "employment_form": {
        "unsubsidised": N_("Osubventionerad anställning"),
        "wage_subsidy": N_("Lönebidrag"),
        "new_start_job": N_("Nystartsjobb"),
        "introduction_job": N_("Introduktionsjobb"),
        "sheltered_public": N_("Offentligt skyddat arbete (OSA)"),
        "other_subsidised": N_("Annan subventionerad anställning"),
    },
    "company_status": {
        "pending": N_("Väntar på granskning"),
        "active": N_("Aktiv"),
        "rejected": N_("Avslagen"),
        "deregistered": N_("Avregistrerad"),
    },
    "legal_form": {
        "ekonomisk_forening": N_("Ekonomisk förening"),
        "ideell_forening": N_("Ideell förening"),
        "aktiebolag": N_("Aktiebolag"),
        "stiftelse": N_("Stiftelse"),
        "handelsbolag": N_("Handelsbolag"),
        "kommanditbolag": N_("Kommanditbolag"),
        "other": N_("Annan form"),
    },
    "industry": {
        "cafe_restaurant": N_("Café och restaurang"),
        "second_hand": N_("Second hand"),
        "recycling": N_("Återvinning och återbruk"),
        "gardening": N_("Trädgård"),
        "cleaning": N_("Städ"),
        "carpentry": N_("Snickeri"),
        "catering": N_("Catering"),
        "laundry": N_("Tvätteri"),
        "other": N_("Annan bransch"),
    },
    "origin": {
        "founded": N_("Nystartat"),
        "municipal_spinoff": N_("Avknoppat från kommunal verksamhet"),
        "existing": N_("Befintligt företag"),
    },
    "participation": {
        "ownership": N_("Ägande"),
        "agreement": N_("Avtal"),
        "other_documented": N_("Annat dokumenterat sätt"),
    },
    "criterion": {
        "runs_business": N_("Driver näringsverksamhet"),
        "integration_purpose": N_("Har integration i arbetslivet som övergripande ändamål"),
        "participation": N_("Medarbetarna är delaktiga"),
        "reinvests_profits": N_("Återinvesterar vinsten"),
        "independent_of_public_sector": N_("Är fristående från offentlig verksamhet"),
    },
    "deregistration_reason": {
        "bankruptcy": N_("Konkurs"),
        "liquidation": N_("Likvidation"),
        "wound_up": N_("Verksamheten upphört"),
        "criteria_unmet": N_("Uppfyller inte kriterierna"),
        "other": N_("Annat skäl"),
    },
    "verification_level": {
        "self_declared": N_("Egendeklarerat"),
        "verified": N_("Granskat"),
        "certified": N_("Certifierat"),
    },
    "collaboration_type": {
        "work_training": N_("Arbetsträning"),
        "founding_support": N_("Stöd vid nystart"),
        "municipal_spinoff": N_("Avknoppning"),
        "reserved_contract": N_("Reserverad upphandling"),
        "other": N_("Annat samarbete"),
    },
    "learning_example_status": {
        "submitted": N_("Inskickat"),
        "published": N_("Publicerat"),
        "declined": N_("Avböjt"),
    },
    "role": {
        "case_worker": N_("Handläggare"),
        "registry_officer": N_("Registerhandläggare"),
        "company_rep": N_("Företagsrepresentant"),
        "analyst": N_("Analytiker"),
        "auditor": N_("Granskare"),
        "information_officer": N_("Informationsansvarig"),
        "company_contact": N_("Kontaktperson på företag"),
    },
    "delivery_status": {
        "pending": N_("Väntar"),
        "sending": N_("Skickas"),
        "sent": N_("Skickat"),
        "retrying": N_("Försöker igen"),
        "failed": N_("Misslyckades"),
        "skipped": N_("Hoppades över"),
    },
    "mode": {
        "immediate": N_("Direkt"),
        "daily_digest": N_("Daglig sammanfattning"),
    },
    "locale": {"sv": N_("Svenska"), "en": N_("Engelska")},
    "timeline": {
        "stage_changed": N_("Steg ändrat"),
        "placement_started": N_("Placering startad"),
        "placement_flagged": N_("Placering flaggad"),
        "placement_ended": N_("Placering avslutad"),
        "employment_started": N_("Anställning startad"),
        "follow_up_recorded": N_("Uppföljning registrerad"),
        "follow_up_due": N_("Uppföljning att göra"),
        "note": N_("Anteckning"),
        "details_changed": N_("Uppgifter ändrade"),
        "reassigned": N_("Ny handläggare"),
        "plan_written": N_("Genomförandeplan skriven"),
        "plan_reviewed": N_("Genomförandeplan uppföljd"),
        "plan_review_due": N_("Dags att följa upp planen"),
    },
    "access_action": {
        "read": N_("Läste uppgifter"),
        "timeline": N_("Läste tidslinjen"),
        "create": N_("Registrerade"),
        "update": N_("Ändrade uppgifter"),
        "erase": N_("Raderade uppgifter"),
        "search": N_("Sökte på personnummer"),
    },
}

STAGE_ORDER = ("referred", "assessment", "in_training", "employed", "closed")

NEXT_STAGES: dict[str, tuple[str, ...]] = {
    "referred": ("assessment", "closed"),
    "assessment": ("in_training", "closed"),
    "in_training": ("employed", "closed"),
    "employed": ("in_training", "closed"),
    "closed": (),
}
"""Casework's stage machine, to offer exactly the allowed next steps as buttons. Casework
enforces it (a 409 names the allowed steps); this copy only decides what to offer."""

STAGE_ACTIONS: dict[str, str] = {
    "assessment": N_("Starta kartläggning"),
    "in_training": N_("Starta placering"),
    "employed": N_("Registrera anställning"),
    "closed": N_("Avsluta ärendet"),
}


def label(kind: str, code: object) -> str:
    """The words for a code; an unknown code is shown as it is."""
    if code is None:
        return ""
    text = LABELS.get(kind, {}).get(str(code))
    return gettext(text) if text else str(code)


def options(kind: str) -> list[tuple[str, str]]:
    """(code, words) pairs for a select or radio group, in the order written above."""
    return [(code, gettext(text)) for code, text in LABELS[kind].items()]
