"""An alert as an email: fixed subject, minimal headers, the content level's body (IG-4).

Synthetic people only: NHS numbers from the 999 test range, addresses at ``.example``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest
from involvement_hub.config import load_vocabulary
from involvement_hub.core.alerts import Alert, ChildRef, Contact, Detail, Told, build_alert
from involvement_hub.core.model import (
    Envelope,
    Identifier,
    LawfulBasis,
    LifeEvent,
    LifeEventKind,
    PersonRef,
    Practitioner,
    Service,
    ServiceCategory,
    ServiceLevel,
    Source,
    Urgency,
)
from involvement_hub.core.policy import ContentLevel, Link, RecipientRole
from involvement_hub.core.routing import Decision, Outcome
from involvement_hub.core.team import Team, TeamMember
from involvement_hub.delivery.message import build_message
from involvement_hub_devtools.synthetic import nhs_number

REPO = Path(__file__).resolve().parents[2]

NOW = dt.datetime(2026, 11, 3, 15, 0, tzinfo=dt.UTC)
OCCURRED = dt.datetime(2026, 11, 3, 14, 5, tzinfo=dt.UTC)
MAIL_FROM = "involvement-hub@hub.northshire.example"
CASE_REF = "CM-2026-004711"
CHILD_NHS = nhs_number(0)
CHILD_GIVEN, CHILD_FAMILY = "Robin", "Testperson"
SUBJECT_TEXT = "Involvement hub: update on one of your cases"

SCHOOL_CONTACT = Contact(
    agency_id="oakfield-primary",
    service_name="Oakfield Primary School",
    service_category="EDUCATION",
    practitioner_name="Sam Exampleton",
    role="designated safeguarding lead",
    is_lead=False,
    email="sam.exampleton@oakfield.example",
    phone="01632 960100",
    team="Pastoral team",
    out_of_hours_phone=None,
)
WHY = "you are the lead practitioner for this child; this update is about the child"
WORDS = load_vocabulary(REPO / "governance" / "vocabulary.toml")
# Codes a reader should never meet: agency ids, enum names, detail codes, policy versions.
CODES = (
    "oakfield-primary",
    "SCHOOL_EXCLUSION",
    "fixed_term",
    "PUBLIC_TASK",
    "SOCIAL_CARE",
    "STATUTORY",
    "2026-11",
    "rule-07",
)


def make_alert(**changes: Any) -> Alert:
    alert = Alert(
        alert_id="5f1c0e9a2b7d4c3e8a6f1b2c3d4e5f60",
        event_key="oakfield-primary/oakfield-excl-000173",
        created_at=NOW,
        recipient_id="northshire-social-care/SW-0043",
        recipient_email="jo.placeholder@northshire.example",
        recipient_name="Jo Placeholder",
        recipient_out_of_hours_phone=None,
        case_ref=CASE_REF,
        kind="SCHOOL_EXCLUSION",
        urgency=Urgency.PRIORITY,
        content_level=ContentLevel.SUMMARY,
        occurred_at=OCCURRED,
        source_agency="oakfield-primary",
        link=Link.SELF,
        why=WHY,
        rule_id="rule-07",
        policy_version="2026-11",
        lawful_basis=LawfulBasis.PUBLIC_TASK,
        changes=(),
        team=(SCHOOL_CONTACT,),
        ingested_at=NOW,
        details=(Detail("exclusion_type", "fixed_term"), Detail("days", "3")),
        source_ref="PUPIL-000173",
        next_step="Speak to the school's designated safeguarding lead before the child returns.",
    )
    return dataclasses.replace(alert, **changes)


def received(msg: Message) -> EmailMessage:
    """The message as a mail client sees it: flattened to bytes and parsed again."""
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_of(msg: Message) -> str:
    part = received(msg).get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(msg: Message) -> str:
    part = received(msg).get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def readable(msg: Message) -> str:
    """Every header and both bodies decoded: what a reader (or a leak) could see.

    The bodies travel base64-encoded, so scanning ``as_string()`` alone would
    never find anything in them.
    """
    headers = "\n".join(f"{name}: {value}" for name, value in received(msg).items())
    return "\n".join((headers, text_of(msg), html_of(msg)))


def test_is_multipart_alternative_with_text_then_html() -> None:
    msg = build_message(make_alert(), MAIL_FROM, NOW)

    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in received(msg).iter_parts()] == [
        "text/plain",
        "text/html",
    ]


@pytest.mark.parametrize("urgency", list(Urgency))
def test_subject_is_the_urgency_and_a_fixed_phrase(urgency: Urgency) -> None:
    msg = build_message(make_alert(urgency=urgency), MAIL_FROM, NOW)

    assert msg["Subject"] == f"[{urgency.value}] {SUBJECT_TEXT}"


def test_headers_carry_no_case_reference_name_or_kind() -> None:
    msg = build_message(make_alert(), MAIL_FROM, NOW)

    for name, value in msg.items():
        lowered = str(value).lower()
        for secret in (CASE_REF, "Jo Placeholder", "SCHOOL_EXCLUSION", "exclusion", "oakfield"):
            assert secret.lower() not in lowered, f"{name} reveals {secret!r}"


def test_message_id_is_the_alert_id_at_the_sender_domain() -> None:
    alert = make_alert()

    first = build_message(alert, MAIL_FROM, NOW)
    resend = build_message(alert, MAIL_FROM, NOW + dt.timedelta(minutes=5))

    assert first["Message-ID"] == f"<{alert.alert_id}@hub.northshire.example>"
    assert resend["Message-ID"] == first["Message-ID"]


def test_addresses_and_auto_submitted() -> None:
    msg = build_message(make_alert(), MAIL_FROM, NOW)

    assert msg["From"] == MAIL_FROM
    assert msg["To"] == "jo.placeholder@northshire.example"
    assert msg["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize(
    ("urgency", "importance"),
    [(Urgency.URGENT, "high"), (Urgency.PRIORITY, None), (Urgency.ROUTINE, None)],
)
def test_only_urgent_alerts_are_marked_important(urgency: Urgency, importance: str | None) -> None:
    msg = build_message(make_alert(urgency=urgency), MAIL_FROM, NOW)

    assert msg["Importance"] == importance


def test_body_names_case_why_team_and_details_in_words() -> None:
    msg = build_message(make_alert(), MAIL_FROM, NOW, WORDS)

    for body in (text_of(msg), html_of(msg)):
        assert CASE_REF in body
        assert f"Why you received this: {WHY}; shared for the public task" in body
        assert "Sam Exampleton, designated safeguarding lead" in body
        assert "sam.exampleton@oakfield.example" in body
        assert "Oakfield Primary School, Pastoral team" in body
        assert "Type: suspension" in body  # DfE's word, not the agency's code
        assert "Days: 3" in body
        assert "Suspension or permanent exclusion from school" in body
        assert "Tue 3 Nov 2026, 14:05 (UK time)" in body
        assert "Oakfield Primary School, their reference PUPIL-000173" in body
        assert "the school office, 01632 960200" in body
        assert "Speak to the school&#x27;s" in body or "Speak to the school's" in body
        for code in CODES:
            assert code not in body, code


def test_times_are_local_in_summer_too() -> None:
    summer = make_alert(occurred_at=dt.datetime(2026, 7, 1, 13, 30, tzinfo=dt.UTC))

    assert "Wed 1 Jul 2026, 14:30 (UK time)" in text_of(build_message(summer, MAIL_FROM, NOW))


def test_an_urgent_alert_says_so_first_and_in_red() -> None:
    msg = build_message(make_alert(urgency=Urgency.URGENT), MAIL_FROM, NOW, WORDS)

    assert text_of(msg).startswith("*** URGENT: please read this now and act on it today. ***")
    assert "background: #d4351c" in html_of(msg)
    assert "URGENT" not in text_of(build_message(make_alert(), MAIL_FROM, NOW, WORDS))


def test_an_updated_involvement_says_what_changed_and_from_what() -> None:
    alert = make_alert(
        kind="INVOLVEMENT_UPDATED",
        details=(
            Detail("change", "UPDATED"),
            Detail("service_level", "SPECIALIST", before="TARGETED"),
            Detail("lead", "yes", before="no"),
        ),
    )

    text = text_of(build_message(alert, MAIL_FROM, NOW, WORDS))

    assert "What changed:" in text
    assert "Level of support: targeted support -> specialist support" in text
    assert "Lead practitioner: no -> yes" in text


def test_a_detail_key_the_vocabulary_does_not_list_is_not_shown() -> None:
    alert = make_alert(details=(Detail("days", "3"), Detail("internal_notes", "see file")))

    text = text_of(build_message(alert, MAIL_FROM, NOW, WORDS))

    assert "Days: 3" in text
    assert "see file" not in text
    assert "internal" not in text


def test_several_children_of_one_case_are_told_apart_by_the_recipients_own_references() -> None:
    children = tuple(
        ChildRef((Identifier("la_person_id", f"LA-{n}"),), Link.SELF) for n in (101, 102)
    )

    text = text_of(build_message(make_alert(children=children), MAIL_FROM, NOW, WORDS))

    assert "Children: 2 in this case: person id LA-101; person id LA-102" in text


def test_a_copy_says_whose_case_it_is_and_how_to_reach_them() -> None:
    lead = dataclasses.replace(
        SCHOOL_CONTACT,
        agency_id="northshire-social-care",
        service_name="Children in Need Team 2",
        practitioner_name="Jo Placeholder",
        role="social worker",
        is_lead=True,
        email="jo.placeholder@northshire.example",
    )
    copy = make_alert(
        copy_kind="out_of_hours",
        copy_of="0" * 32,
        owner=lead,
        note="Out-of-hours copy of an URGENT alert for Jo Placeholder.",
        why="you are the out-of-hours contact of Northshire Children's Social Care",
    )

    text = text_of(build_message(copy, MAIL_FROM, NOW, WORDS))

    assert f"Case reference: {CASE_REF}" in text
    assert "Your case reference" not in text
    assert "Lead practitioner: Jo Placeholder, social worker (lead practitioner)" in text
    assert "jo.placeholder@northshire.example" in text
    assert "you are the lead practitioner" not in text


def test_who_else_was_told_is_listed_by_role_and_agency() -> None:
    told = (Told("designated safeguarding lead", "oakfield-primary", "Oakfield Primary School"),)

    text = text_of(build_message(make_alert(also_told=told), MAIL_FROM, NOW, WORDS))

    assert "Also told about this:" in text
    assert "designated safeguarding lead, Oakfield Primary School (Oakfield Primary School)" in text


def test_html_escapes_names_from_agencies() -> None:
    hostile = dataclasses.replace(SCHOOL_CONTACT, practitioner_name="Sam <script>x()</script>")
    alert = make_alert(team=(hostile,), changes=(("Practitioner", "<b>Jo</b> & co"),))  # older

    body = html_of(build_message(alert, MAIL_FROM, NOW))

    assert "<script" not in body
    assert "Sam &lt;script&gt;x()&lt;/script&gt;" in body
    assert "<b>Jo</b>" not in body
    assert "&lt;b&gt;Jo&lt;/b&gt; &amp; co" in body


# Through build_alert: what each content level lets the email say.


def _member(
    agency: str, ref: str, practitioner: Practitioner, service: Service, *, lead: bool
) -> TeamMember:
    return TeamMember(
        involvement_key=f"{agency}/{ref}-inv",
        agency_id=agency,
        record_ref=ref,
        service=service,
        practitioner=practitioner,
        is_lead=lead,
        lawful_basis=LawfulBasis.PUBLIC_TASK,
        consent_to_share=None,
        started_on=dt.date(2026, 9, 1),
        ended_on=None,
        end_reason=None,
        ended_at=None,
        version=(OCCURRED, 0, f"{agency}/{ref}"),
    )


SOCIAL_WORKER = _member(
    "northshire-social-care",
    CASE_REF,
    Practitioner("SW-0043", "Jo Placeholder", "social worker", "jo.placeholder@northshire.example"),
    Service(
        "CIN-2", "Children in Need Team 2", ServiceCategory.SOCIAL_CARE, ServiceLevel.STATUTORY
    ),
    lead=True,
)
SCHOOL_DSL = _member(
    "oakfield-primary",
    "PUPIL-000173",
    Practitioner(
        "DSL-01",
        "Sam Exampleton",
        "designated safeguarding lead",
        "sam.exampleton@oakfield.example",
    ),
    Service("OPS", "Oakfield Primary School", ServiceCategory.EDUCATION, ServiceLevel.UNIVERSAL),
    lead=False,
)
EXCLUSION = LifeEvent(
    envelope=Envelope(
        event_id="oakfield-excl-000173",
        occurred_at=OCCURRED,
        recorded_at=OCCURRED,
        source=Source("oakfield-primary", "school-mis", "PUPIL-000173"),
        subject=PersonRef(
            identifiers=(Identifier("nhs_number", CHILD_NHS),),
            given_name=CHILD_GIVEN,
            family_name=CHILD_FAMILY,
            date_of_birth=dt.date(2017, 3, 14),
        ),
    ),
    life_event_kind=LifeEventKind.SCHOOL_EXCLUSION,
    urgency=Urgency.PRIORITY,
    details=(("days", "3"), ("exclusion_type", "fixed_term")),
)


def message_at(level: ContentLevel) -> EmailMessage:
    decision = Decision(
        event_key=EXCLUSION.envelope.key,
        kind=EXCLUSION.kind,
        person_id="p-child",
        about_person_id="p-child",
        link=Link.SELF,
        recipient=SOCIAL_WORKER,
        role=RecipientRole.LEAD_PRACTITIONER,
        rule_id="rule-07",
        policy_version="2026-11",
        lawful_basis=LawfulBasis.PUBLIC_TASK,
        content_level=level,
        urgency=Urgency.PRIORITY,
        outcome=Outcome.SEND,
    )
    team = Team("p-child", (SOCIAL_WORKER, SCHOOL_DSL))
    alert = build_alert(
        decision, EXCLUSION, team, now=NOW, ingested_at=NOW, grace=dt.timedelta(days=14)
    )
    return build_message(alert, MAIL_FROM, NOW, WORDS)


def test_empty_level_says_only_that_there_is_an_update() -> None:
    msg = message_at(ContentLevel.EMPTY)
    text = text_of(msg)

    before_why = text.split("Why you received this")[0]
    lines = [line for line in before_why.splitlines() if line.strip()]
    assert lines == [
        "There is an update on one of your cases.",
        f"Your case reference: {CASE_REF}",
        "Urgency: PRIORITY - within two working days",
    ]
    for body in (text, html_of(msg)):
        for hidden in ("exclusion", "oakfield", "Sam Exampleton", "fixed_term", "What changed"):
            assert hidden.lower() not in body.lower()


def test_reference_level_adds_what_when_who_reported_it_and_the_team_but_no_details() -> None:
    msg = message_at(ContentLevel.REFERENCE)

    for body in (text_of(msg), html_of(msg)):
        assert "Suspension or permanent exclusion from school" in body
        assert "Oakfield Primary School, their reference PUPIL-000173" in body
        assert "Sam Exampleton, designated safeguarding lead" in body
        assert "suspension" not in body.replace("Suspension or", "")
        assert "Details" not in body


def test_summary_level_adds_the_details() -> None:
    msg = message_at(ContentLevel.SUMMARY)

    for body in (text_of(msg), html_of(msg)):
        assert "Type: suspension" in body
        assert "Sam Exampleton, designated safeguarding lead" in body


@pytest.mark.parametrize("level", list(ContentLevel))
def test_no_level_shows_a_code(level: ContentLevel) -> None:
    seen = readable(message_at(level))

    for code in CODES:
        assert code not in seen, code


@pytest.mark.parametrize("level", list(ContentLevel))
def test_no_level_reveals_the_child(level: ContentLevel) -> None:
    msg = message_at(level)
    seen = readable(msg)

    assert "Why you received this" in seen  # the scan reads decoded bodies
    for personal in (CHILD_GIVEN, CHILD_FAMILY, CHILD_NHS, "2017-03-14", "14 Mar 2017"):
        assert personal not in seen
