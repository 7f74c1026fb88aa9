"""Reading an authorization ticket as a careful support agent would: conservative by design.

The provider's procedure asks for two tickets:
- the customer's, subject "Authorize transfer of account": "We, <customer domain>, authorize
  the transfer of our direct account to resold under <new reseller>.";
- the reseller's, subject "Authorize Customer Transfer": "We, <new reseller>, Authorize
  <customer domain> to be transferred to our account."

`read_ticket` gives one of three outcomes:
- `authorized`: the subject is an authorization subject, one sentence states the authorization
  (an authorizing verb, the transfer, the customer domain and the reseller), and nothing in the
  ticket or its later comments negates, refuses or revokes anything;
- `refused`: a sentence about the transfer negates, refuses or revokes it (the sentence is
  given), or the ticket was closed as rejected, declined, withdrawn, ...; nothing overrides it;
- `needs_review`: the ticket mentions the parties but is not a clear statement (another
  subject, no authorizing sentence, a negation elsewhere). A person may approve it.

Texts are compared after Unicode NFKC normalisation and case folding, with dotted
abbreviations collapsed ("I.T." is "IT"), contractions expanded ("don't" is "do not"), and URLs
reduced to their host ("https://www.acme.com/" names acme.com). The runner's own comments
(idempotency key `ticket-comment:…`) are not read; every other comment is.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import idna

from transfer_runner.platforms.base import Ticket

__all__ = [
    "Outcome",
    "Reading",
    "read_ticket",
    "mentions_domain",
    "mentions_name",
    "same_name",
    "normalize",
]

Outcome = Literal["authorized", "refused", "needs_review"]

_AUTHORIZING = re.compile(r"\b(authori[sz]e[sd]?|authori[sz]ing|approve[sd]?|approving|consent)\b")
_TRANSFER = re.compile(r"\b(transfer(s|red|ring)?|move[sd]?|moving|migrat(e|ed|ion))\b")
# Words that refuse whatever sentence they stand in, and plain negations, which refuse a
# sentence about the transfer and make any other one a matter for a person.
_REFUSING = re.compile(
    r"\b(refuse[sd]?|refusing|refusal|revoke[sd]?|revoking|revocation|withdraw[sn]?|"
    r"withdrawing|withdrawal|withdrew|rescind(s|ed)?|retract(s|ed)?|decline[sd]?|declining|"
    r"reject(s|ed)?|rejecting|deny|denie[sd]|oppose[sd]?|objects?|objected|unauthori[sz]ed|"
    r"disapprove[sd]?|stop|halt)\b"
)
_NEGATION = re.compile(r"\b(not|no|never|nor|neither|without|nope)\b")
_BARE_NO = re.compile(r"^(no|nope|never|not|no way)\W*$")
_REFUSED_RESOLUTIONS = re.compile(
    r"\b(reject|rejected|decline|declined|denied|deny|withdrawn|withdraw|revoked|refused|"
    r"cancel(l?ed)?|invalid|spam|duplicate)\b"
)
_CONTRACTIONS = (
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"n't\b"), " not"),
)
_SUBJECTS = {
    "customer": (r"authori[sz]", r"transfer"),
    "reseller": (r"authori[sz]", r"transfer"),
}


_FORMS = {
    "customer": "We, <domain>, authorize the transfer of our direct account to resold under "
    "<reseller>",
    "reseller": "We, <reseller>, authorize <domain> to be transferred to our account",
}


@dataclass(frozen=True)
class Reading:
    """What a ticket says: its outcome, why, and the sentence that decides it (if any)."""

    outcome: Outcome
    reason: str
    sentence: str = ""

    @property
    def authorized(self) -> bool:
        return self.outcome == "authorized"


def normalize(text: str) -> str:
    """NFKC, case-folded, typographic quotes straightened, dotted abbreviations collapsed,
    contractions expanded, URLs reduced to their host, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
    text = re.sub(r"\b(?:[a-z]\.){2,}(?![a-z0-9])", lambda m: m.group(0).replace(".", ""), text)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    text = re.sub(r"\bhttps?://", "", text)
    text = re.sub(r"(?<![\w.-])www\.(?=[\w-]+\.)", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _sentences(text: str) -> list[str]:
    """Sentences of a normalised text: split at . ! ? ; followed by a space, and at newlines."""
    parts = re.split(r"(?<=[.!?;])\s+|\n+|(?<=[.!?;])$", text)
    return [p.strip() for p in parts if p and p.strip()]


def mentions_domain(text: str, domain: str) -> bool:
    """True if `domain` (A-label or its Unicode form) appears as a whole name in `text`."""
    forms = {domain.lower()}
    with contextlib.suppress(idna.IDNAError, UnicodeError):
        forms.add(idna.decode(domain).lower())
    low = normalize(text)
    for form in forms:
        form = unicodedata.normalize("NFKC", form).casefold()
        pattern = r"(?<![\w.-])" + re.escape(form) + r"(?![\w-]|\.[\w])"
        if re.search(pattern, low):
            return True
    return False


def mentions_name(text: str, name: str) -> bool:
    """True if `name` appears as whole words in `text` (normalised: "Northwind I.T." names
    "Northwind IT"; "Northwind ITALIA" does not)."""
    words = re.findall(r"[\w&]+", normalize(name))
    if not words:
        return False
    pattern = r"(?<![\w&])" + r"[\s,.-]+".join(re.escape(w) for w in words) + r"(?![\w&])"
    return re.search(pattern, normalize(text)) is not None


# the idempotency-key kinds of the runner's own comments: its outcome, and its claim (`claims`)
RUNNER_COMMENT_KINDS = ("ticket-comment:", "ticket-claim:", "ticket-release:")


def same_name(a: str, b: str) -> bool:
    """Whether two names are the same once normalised: "Northwind I.T." is "northwind it"."""
    return re.findall(r"[\w&]+", normalize(a)) == re.findall(r"[\w&]+", normalize(b))


def _texts(ticket: Ticket) -> list[str]:
    """Subject, body and the comments of people (not the runner's own), normalised."""
    texts = [normalize(ticket.subject), normalize(ticket.body)]
    texts += [
        normalize(c.body)
        for c in ticket.comments
        if not (c.idempotency_key or "").startswith(RUNNER_COMMENT_KINDS)
    ]
    return texts


def _concerns_transfer(sentence: str, domains: Sequence[str], reseller_name: str) -> bool:
    return bool(
        _AUTHORIZING.search(sentence)
        or _TRANSFER.search(sentence)
        or re.search(r"\b(reseller|resold|account|customer|fee|charge|bill(ed|ing)?)\b", sentence)
        or mentions_name(sentence, reseller_name)
        or any(mentions_domain(sentence, d) for d in domains)
    )


def _states_authorization(
    sentence: str, role: str, domains: Sequence[str], reseller_name: str
) -> bool:
    return bool(
        not sentence.endswith("?")  # a question states nothing
        and _AUTHORIZING.search(sentence)
        and _TRANSFER.search(sentence)
        and any(mentions_domain(sentence, d) for d in domains)
        and mentions_name(sentence, reseller_name)
        and (role == "reseller" or re.search(r"\b(resold|reseller|under)\b", sentence))
    )


def _subject_ok(subject: str, role: str) -> bool:
    return all(re.search(p, subject) for p in _SUBJECTS[role])


def read_ticket(
    ticket: Ticket, *, role: str, domains: Sequence[str], reseller_name: str
) -> Reading:
    """What the ticket says about this transfer (see the module docstring)."""
    resolution = normalize(ticket.resolution or "")
    if ticket.status == "closed" and _REFUSED_RESOLUTIONS.search(resolution):
        return Reading("refused", f"is closed as {resolution}")
    texts = _texts(ticket)
    refusal = _first(
        s
        for text in texts
        for s in _sentences(text)
        if _REFUSING.search(s)
        or _BARE_NO.match(s)
        or (_NEGATION.search(s) and _concerns_transfer(s, domains, reseller_name))
    )
    if refusal:
        return Reading("refused", f"refuses or negates the transfer: {refusal!r}", refusal)
    statement = _first(
        s for s in _sentences(texts[1]) if _states_authorization(s, role, domains, reseller_name)
    )
    if statement is None:
        return Reading("needs_review", _missing(texts, role, domains, reseller_name))
    if not _subject_ok(texts[0], role):
        return Reading(
            "needs_review",
            f"its subject {ticket.subject!r} is not an authorization subject",
            statement,
        )
    other = _first(s for text in texts for s in _sentences(text) if _NEGATION.search(s))
    if other:
        return Reading("needs_review", f"also says {other!r}", other)
    return Reading("authorized", "states the authorization", statement)


def _first(items: Iterable[str]) -> str | None:
    return next(iter(items), None)


def _missing(texts: list[str], role: str, domains: Sequence[str], reseller_name: str) -> str:
    whole = " ".join(texts)
    missing = []
    if not any(mentions_domain(whole, d) for d in domains):
        missing.append(f"does not name the customer domain ({', '.join(domains)})")
    if not mentions_name(whole, reseller_name):
        missing.append(f"does not name the new reseller {reseller_name!r}")
    if missing:
        return "; ".join(missing)
    return f"names the parties but states no authorization (expected: {_FORMS[role]!r})"
