"""An alert as an email: multipart text and HTML from templates, minimal headers.

The subject and headers carry no personal data: only the urgency and a fixed phrase. The
case reference (the recipient's own system's) and everything else is in the body, within
the alert's content level. ``Message-ID`` is derived from the alert id, so a resend of the
same alert is recognisably the same message.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from email.message import EmailMessage
from email.utils import format_datetime
from importlib import resources
from string import Template

from involvement_hub.core.alerts import Alert, Contact

_KIND_LABEL_OVERRIDES = {
    "INVOLVEMENT_STARTED": "A service started working with the child",
    "INVOLVEMENT_UPDATED": "A service's involvement with the child changed",
    "INVOLVEMENT_ENDED": "A service stopped working with the child",
    "RELATIONSHIP_STARTED": "A family relationship was recorded",
    "RELATIONSHIP_ENDED": "A family relationship ended",
}


def kind_label(kind: str) -> str:
    return _KIND_LABEL_OVERRIDES.get(kind, kind.replace("_", " ").capitalize())


def _template(name: str) -> Template:
    text = resources.files("involvement_hub").joinpath("templates", name).read_text("utf-8")
    return Template(text)


_TEXT = _template("alert.txt")
_HTML = _template("alert.html")


def message_id(alert_id: str, mail_from: str) -> str:
    domain = mail_from.rpartition("@")[2] or "hub.invalid"
    return f"<{alert_id}@{domain}>"


def subject(alert: Alert) -> str:
    return f"[{alert.urgency.value}] Involvement hub: update on one of your cases"


def build_message(alert: Alert, mail_from: str, now: dt.datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = alert.recipient_email
    msg["Subject"] = subject(alert)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(alert.alert_id, mail_from)
    # RFC 3834: tells mail servers and clients not to send auto-replies to the hub.
    msg["Auto-Submitted"] = "auto-generated"
    if alert.urgency.value == "URGENT":
        msg["Importance"] = "high"
    msg.set_content(_text(alert))
    msg.add_alternative(_html(alert), subtype="html")
    return msg


def _headline(alert: Alert) -> str:
    if alert.source_agency is None:
        return "There is an update on one of your cases."
    return f"{kind_label(alert.kind)}."


def _summary_rows(alert: Alert) -> list[tuple[str, str]]:
    if alert.source_agency is None:
        return []
    return [
        ("What happened", kind_label(alert.kind)),
        ("When", alert.occurred_at.astimezone(dt.UTC).strftime("%d %b %Y %H:%M UTC")),
        ("Reported by", alert.source_agency),
    ]


def _contact_line(c: Contact) -> str:
    parts = [f"{c.practitioner_name}, {c.role}" + (" (lead practitioner)" if c.is_lead else "")]
    team = f", {c.team}" if c.team and c.team != c.service_name else ""
    parts.append(f"{c.service_name}{team}")
    reach = [c.email] + ([c.phone] if c.phone else [])
    if c.out_of_hours_phone:
        reach.append(f"out of hours {c.out_of_hours_phone}")
    parts.append(" / ".join(reach))
    return " - ".join(parts)


def _text(alert: Alert) -> str:
    summary = "".join(f"{label}: {value}\n" for label, value in _summary_rows(alert))
    changes = ""
    if alert.changes:
        changes = "\nWhat changed:\n" + "".join(f"  {k}: {v}\n" for k, v in alert.changes)
    team = ""
    if alert.team:
        team = "\nWho else works with this child:\n" + "".join(
            f"  - {_contact_line(c)}\n" for c in alert.team
        )
    text = _TEXT.substitute(
        headline=_headline(alert),
        case_ref=alert.case_ref,
        urgency=alert.urgency.value,
        summary=summary,
        changes=changes,
        team=team,
        why=alert.why,
        alert_id=alert.alert_id,
    )
    # Optional sections leave runs of blank lines behind; one is enough.
    return re.sub(r"\n{3,}", "\n\n", text)


def _html(alert: Alert) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><th style="text-align: left; padding-right: 1em">{e(k)}</th><td>{e(v)}</td></tr>\n'
        for k, v in _summary_rows(alert)
    )
    changes = ""
    if alert.changes:
        items = "".join(f"<li>{e(k)}: {e(v)}</li>" for k, v in alert.changes)
        changes = f"<h3>What changed</h3><ul>{items}</ul>"
    team = ""
    if alert.team:
        items = "".join(f"<li>{e(_contact_line(c))}</li>" for c in alert.team)
        team = f"<h3>Who else works with this child</h3><ul>{items}</ul>"
    return _HTML.substitute(
        title=e(subject(alert)),
        headline=e(_headline(alert)),
        case_ref=e(alert.case_ref),
        urgency=e(alert.urgency.value),
        summary_rows=rows,
        changes=changes,
        team=team,
        why=e(alert.why),
        alert_id=e(alert.alert_id),
    )
