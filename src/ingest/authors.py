"""Author names as pages give them, made into people (and agencies): the one place bylines are cleaned (pure).
``ingest.metadata`` finds the raw names (JSON-LD, meta tags, byline markup); :func:`clean_authors` turns them into
names: byline words, job titles, newsroom codes, dates and e-mail addresses cut, lists split, duplicates merged."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ingest.text import SPACE, WORD, clean, fold, unescape

# Byline words before a name: English, French, German, Dutch, Spanish/Portuguese, Polish, Italian, Swedish.
# "Von" is also a name's particle: before another particle it is the name ("Von der Leyen", "Von dem Bussche").
_AUTHOR_PREFIX = re.compile(
    r"^(?:(?:written|reported|words|story|text)\s+by|by|par|von(?!\s+(?:der|dem|den|zu)\s+[^\W\d_])|door|por|przez"
    r"|auteure?|autor|autorin|autora"
    r"|autore|author|texte?|texto|testo|tekst)\b\s*:?\s*",
    re.I,
)
# "Di", "Av": only before a name of two words or more ("Di Maria" is a name, "Di Mario Rossi" a byline).
_SHORT_PREFIX = re.compile(r"^(?:di|av)\s+(?=[^\W\d_][\w.'-]*\s+[^\W\d_])", re.I)
# Between two names: ";", "|", "&", a spaced dash, and "and" in the languages above (lower case only).
_AUTHOR_SPLIT = re.compile(
    r"\s*(?:;|\||&|\n|\s[-–—]\s|\b(?:and|et|und|en|y|e|i|och|og|oraz)\b)\s*"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MONTH = (
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mär|mai|okt|dez|janv|févr|fév|avr|juin|juil|aoû|déc"
    r"|ene|abr|ago|dic|gen|mag|giu|lug|ott|maj|paź|gru)[\w.]*"
)
# A date, or a "published/updated" line, run into the end of a name: "Jane Doe 12 March 2024", "Jane DoeUpdated".
_DATE_TAIL = re.compile(
    r"(?:\s*[,|·•]?\s*(?:(?:published|updated|posted|aktualisiert|veröffentlicht|publié|mis à jour|actualizado)\b"
    r"|(?:le|am|on|el|il|den)\s+\d)"
    r"|(?<=[^\W\d_])(?:Published|Updated|Posted|Aktualisiert|Veröffentlicht|Publié)"
    r"|\s*[,|·•]?\s*(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}"
    r"|\d{1,2}\.?\s+" + _MONTH + r"\s+\d{4}|" + _MONTH + r"\s+\d{1,2},?\s+\d{4}))"
    r".*$",
    re.I,
)
# A newsroom's short code for a writer after the name: "Elena Muster (emu)".
_CODE_TAIL = re.compile(r"\s*\(\s*[^\W\d_A-Z]{2,5}\.?\s*\)$")
# Words of a job title ("Senior Political Correspondent"), and the ones that make it one.
_ROLE_WORDS = frozenset(
    SPACE.split(
        "senior chief deputy associate assistant contributing political foreign business sport sports health "
        "science technology tech economics economic diplomatic security defence defense legal royal showbiz "
        "entertainment news investigations international national world special staff freelance guest executive "
        "managing digital social media data lead home affairs culture crime education environment weather "
        "travel money property motoring europe of the for at and"
    )
)
_ROLE_NOUNS = frozenset(
    SPACE.split(
        "editor editors writer writers reporter reporters correspondent correspondents journalist journalists "
        "columnist contributor producer photographer analyst critic redakteur redakteurin korrespondent "
        "korrespondentin journaliste rédacteur rédactrice correspondant correspondante envoyé envoyée "
        "redacteur verslaggever correspondente periodista corresponsal redattore redattrice giornalista "
        "dziennikarz dziennikarka reporterin"
    )
)
# A picture credit where a name is expected: "(Image: Getty Images)", "Photo: Jane Doe".
_CREDIT = re.compile(r"^\(?\s*(?:images?|photos?|pictures?|fotos?|bild|credits?|crédits?)\s*:", re.I)
# After a name: a social handle ("(@janedoe)"), the paper the writer works for ("For MailOnline", "pour Le
# Monde") and the place written from ("in Kyiv", "aus Berlin"); cut when a name of two words or more is left.
_HANDLE = re.compile(r"\s*\(?@\w+\)?")
_TAIL = re.compile(
    r"\s+(?:(?i:for|für|pour|voor)\s+\S.*|(?:in|aus|à)\s+[^\W\d_a-z][\w'-]*(?:\s+[^\W\d_a-z][\w'-]*)?)$"
)
# An author page's URL in place of a name: ".../author/jane-doe/" names Jane Doe.
_AUTHOR_DIRS = r"/(?:authors?|autor(?:en)?|auteurs?|journalists?|people|staff|profiles?)/([a-z]+(?:-[a-z]+)+)/?$"
_AUTHOR_URL = re.compile(r"^https?://\S+" + _AUTHOR_DIRS)
_SLUG = re.compile(r"[a-z]+(?:-[a-z]+)+")  # "sophie-foster", a URL slug in place of a name
_AUTHOR_PATH = re.compile(_AUTHOR_DIRS)  # the same in a link's href
_NOT_A_NAME = re.compile(r"@|https?://|www\.|\d{3,}")


def author_page_name(href: str, text: str) -> str | None:
    """The name a link to an author page gives ("<a href='/staff/jane-doe/'>Jane Doe</a>" → "Jane Doe"): only
    when its text spells the page's slug, so that a link to a section or a tag named like a person is not one."""
    found = _AUTHOR_PATH.search(href.split("?", 1)[0].split("#", 1)[0])
    name = clean(text)
    if not found or not name or len(name) > 80:
        return None
    spelled = "-".join(f for f in (fold(w) for w in WORD.findall(name)) if f)
    return name if len(name.split()) >= 2 and spelled == found.group(1) else None


def clean_authors(raw: Sequence[str] | str | None, site_names: Sequence[str] = ()) -> tuple[str, ...]:
    """Person and agency names, one each: bylines ("By", "Par", "Von" but not "Von der …", "Por", "Di", "Door",
    "Av", "Przez"), job titles ("Senior Reporter"), newsroom codes, dates, e-mail addresses, handles and the
    paper or place after a name ("for The Courier", "in Kyiv") cut; lists split ("A and B", "A, B", "A & B",
    "A et B", "A und B"); picture credits, URLs and the site's own name dropped when people are named; slug
    twins ("Sophie-Foster") and case variants merged."""
    if not raw:
        return ()
    values = [raw] if isinstance(raw, str) else raw
    names: list[str] = []
    for value in values:
        for part in _AUTHOR_SPLIT.split(_drop_emails(unescape(value))):
            for piece in _split_commas(clean(part)):
                if _CREDIT.match(piece):
                    continue
                url = _AUTHOR_URL.match(piece)
                name = url.group(1) if url else _clean_name(piece)
                if _SLUG.fullmatch(name):
                    name = name.replace("-", " ").title()
                if name and not _NOT_A_NAME.search(name) and len(name) <= 80 and not _is_role(name):
                    names.append(name)
    kept: dict[str, str] = {}
    for name in names:
        seen = kept.setdefault(fold(name), name)
        if seen.isupper() and not name.isupper():  # "JANE DOE" and "Jane Doe": the reader's spelling
            kept[fold(name)] = name
    result = list(kept.values())
    people = [n for n in result if not is_site([n], site_names)]
    return tuple(people or result)


def pick_authors(sources: Sequence[Sequence[str] | str | None], site_names: Sequence[str] = ()) -> tuple[str, ...]:
    """The names of the first source (strongest first) that names someone other than the site itself, else of
    the first that names anyone: a page whose JSON-LD credits only its own newsroom ("The Courier") and whose
    byline names the writer is the writer's."""
    first: tuple[str, ...] = ()
    for source in sources:
        names = clean_authors(source, site_names)
        if names and not is_site(names, site_names):
            return names
        first = first or names
    return first


def is_site(names: Sequence[str], site_names: Sequence[str]) -> bool:
    """Whether every name is the site's own (its declared name, its domain)."""
    sites = {fold(s) for s in site_names}
    return all(fold(n) in sites for n in names)


def _clean_name(text: str) -> str:
    name = text.strip(" ,.:;|-")
    name = _SHORT_PREFIX.sub("", _AUTHOR_PREFIX.sub("", name)).strip(" ,.:;|-")
    name = _CODE_TAIL.sub("", _DATE_TAIL.sub("", name)).strip(" ,.:;|-")
    if len(shorter := _TAIL.sub("", _HANDLE.sub("", name)).strip(" ,.:;|-").split()) >= 2:
        name = " ".join(shorter)
    return _drop_role_tail(name)


def _drop_emails(text: str) -> str:
    """The text without e-mail addresses, also one run into the name before it ("Jane Doejane.doe@x.org")."""
    while (match := _EMAIL.search(text)) is not None:
        local = match.group(0).split("@")[0]
        before = text[: match.start()]
        words = {w.casefold() for w in WORD.findall(before) if len(w) >= 2}
        glued = ""
        for k in range(1, len(local)):
            rest = local[k:].casefold()
            if local[k - 1].isalpha() and (
                rest.startswith(local[:k].casefold()) or any(rest.startswith(w) for w in words)
            ):
                glued = local[:k]
                break
        text = before + glued + " " + text[match.end():]
    return text


def _split_commas(text: str) -> list[str]:
    """``"A B, C D"`` → two names; ``"Doe, Jane"`` stays one; a job title or a lower-case tail after a comma
    (``"Jane Doe, Political Correspondent"``, ``"Jane Doe, in Kyiv"``) is not a name."""
    parts = [p.strip() for p in text.split(",")]
    parts = [p for i, p in enumerate(parts) if p and not (i and p[0].islower()) and not _is_role(p)]
    if len(parts) > 1 and all(len(p.split()) >= 2 for p in parts):
        return parts
    return [", ".join(parts)] if parts else []


def _role_words(text: str) -> list[str]:
    return [w.casefold() for w in WORD.findall(text)]


def _is_role(text: str) -> bool:
    words = _role_words(text)
    return bool(words) and all(w in _ROLE_WORDS or w in _ROLE_NOUNS for w in words) and bool(
        set(words) & _ROLE_NOUNS
    )


def _drop_role_tail(name: str) -> str:
    """``"Jane Doe Senior Reporter"`` → ``"Jane Doe"``; ``"Guardian staff reporter"`` stays (one word left)."""
    words = name.split()
    end = len(words)
    while end > 0 and words[end - 1].strip("()").casefold() in _ROLE_WORDS | _ROLE_NOUNS:
        end -= 1
    tail = " ".join(words[end:])
    if end >= 2 and _is_role(tail):
        return " ".join(words[:end])
    return name
