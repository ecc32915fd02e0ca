"""The preference centre (contract section 11): a page, reached by a signed link in every
email, where a user turns media on and off per type and sets quiet hours, without a login.

The link's token names the user and nothing else (the payload is the user id's UTF-8
bytes), signed as `signed_links.py` says under a key of its own purpose, so an unsubscribe
token never opens it. Writes go through the preference service (whose caches drop the
user) and the contact service (which moves what waits for the old quiet hours), the same
paths as `PUT /api/notifications/preferences` and `PUT /api/users/{id}/contact`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError

from tidings.config.settings import Settings
from tidings.domain.contact import ContactInput, QuietHours
from tidings.domain.inputs import PreferenceInput
from tidings.domain.model import Principal, utcnow
from tidings.domain.preference import Preference
from tidings.domain.preference_centre import (
    CatalogueEntry,
    FormError,
    Line,
    changes,
    listing,
    parse_form,
)
from tidings.domain.text import is_storable
from tidings.services.contacts import ContactService
from tidings.services.preferences import PreferenceService
from tidings.services.signed_links import BadToken, open_token, purpose_key, sign
from tidings.services.type_cache import TypeCache
from tidings.store import contacts as contact_store
from tidings.store import preferences as preference_store
from tidings.store.database import Database
from tidings.support.i18n import chain

RECENT = timedelta(days=90)  # the types received this long ago still have a line
MAX_RECEIVED = 500  # lines from history at most (a page a person can read)
MAX_USER_ID_LENGTH = 255
_PURPOSE = b"tidings preference centre v1"
_REFUSAL = "this preference link is not valid"

# Where the page's types come from besides the user's history and rows.
CatalogueSource = Callable[[], Awaitable[Sequence[CatalogueEntry]]]


async def no_catalogue() -> Sequence[CatalogueEntry]:
    """A source without types (the page then lists the user's history and rows)."""
    return ()


def catalogue_of(types: TypeCache) -> CatalogueSource:
    """The types catalogue as the page reads it: through the process's cache (no query
    when it is warm), each type's names by locale and whether it is required."""

    async def entries() -> Sequence[CatalogueEntry]:
        return [CatalogueEntry(kind.channel, kind.type, kind.spec.name, kind.spec.required)
                for kind in (await types.catalogue()).values()]

    return entries


def preferences_url(public_url: str, token: str) -> str:
    """`{PUBLIC_URL}/preferences/{token}` (the token is URL-safe as it is)."""
    return f"{public_url.rstrip('/')}/preferences/{token}"


def mint_link_token(key: bytes, user_id: str) -> str:
    return sign(key, user_id.encode())


def read_link_token(key: bytes, token: str) -> str:
    """The user a token names; `BadToken` unless this key signed it."""
    payload = open_token(key, token, _REFUSAL)
    try:
        user_id = payload.decode()
    except UnicodeDecodeError as exc:
        raise BadToken(_REFUSAL) from exc
    if not (0 < len(user_id) <= MAX_USER_ID_LENGTH and is_storable(user_id)):
        raise BadToken(_REFUSAL)
    return user_id


def link_key(settings: Settings) -> bytes:
    return purpose_key(settings, _PURPOSE)


class BadForm(FormError):
    """A form the page never sends; `field` names what is wrong (the edge answers 422)."""


@dataclass(frozen=True, slots=True)
class CentrePage:
    user_id: str
    locale: str | None
    lines: list[Line]
    quiet_hours: QuietHours | None


class PreferenceCentre:
    def __init__(self, db: Database, settings: Settings, preferences: PreferenceService,
                 contacts: ContactService, catalogue: CatalogueSource = no_catalogue) -> None:
        self._db = db
        self._key = link_key(settings)
        self._public_url = settings.public_url
        self._preferences = preferences
        self._contacts = contacts
        self._catalogue = catalogue

    def link(self, user_id: str) -> str:
        return preferences_url(self._public_url, mint_link_token(self._key, user_id))

    def user_of(self, token: str) -> str:
        """The user the token names, changing nothing; `BadToken` if forged."""
        return read_link_token(self._key, token)

    async def locale_of(self, user_id: str) -> str | None:
        """The contact's locale, for the pages a user's links open (unsubscribe too)."""
        async with self._db.begin() as conn:
            contact = await contact_store.get(conn, user_id)
        return contact.locale if contact else None

    async def page(self, token: str) -> CentrePage:
        return (await self._state(self.user_of(token)))[0]

    async def _state(self, user_id: str) -> tuple[CentrePage, list[Preference]]:
        """The page as it stands, and the rows it was made from (one snapshot)."""
        entries = await self._catalogue()
        async with self._db.snapshot() as conn:
            contact = await contact_store.get(conn, user_id)
            received = await preference_store.topics_received(
                conn, user_id, utcnow() - RECENT, MAX_RECEIVED)
            rows = await preference_store.list_for_user(conn, user_id)
        locale = contact.locale if contact else None
        page = CentrePage(user_id, locale, listing(entries, received, rows, chain(locale)),
                          contact.quiet_hours if contact else None)
        return page, rows

    async def save(self, token: str, items: Sequence[tuple[str, str]]) -> None:
        """Apply a submitted form: the switches that changed, then the quiet hours if they
        did. The form is checked whole before anything is written."""
        user_id = self.user_of(token)
        try:
            form = parse_form(items)
        except FormError as exc:
            raise BadForm(exc.field) from exc
        quiet = _quiet_change(form.quiet_start, form.quiet_end)
        current, rows = await self._state(user_id)
        wanted = changes(form, current.lines, rows)
        if wanted:
            await self._preferences.save(user_id, [
                PreferenceInput(channel=c.channel, notification_type=c.notification_type,
                                **c.given()) for c in wanted])
        if quiet.change().quiet_hours != current.quiet_hours:
            # The token holder acts as the user, as on `PUT /api/users/me/contact`.
            await self._contacts.put(Principal(user_id), user_id, quiet.change())


def _quiet_change(start: str, end: str) -> ContactInput:
    """The contact write of the quiet-hours fields: both empty clears them."""
    if not start and not end:
        return ContactInput(quiet_hours=None)
    if not start or not end:
        raise BadForm("quiet_start" if not start else "quiet_end")
    try:
        return ContactInput.model_validate({"quiet_hours": {"start": start, "end": end}})
    except ValidationError as exc:
        where = str(exc.errors()[0]["loc"][-1]) if exc.errors() else "start"
        raise BadForm("quiet_end" if where == "end" else "quiet_start") from exc
