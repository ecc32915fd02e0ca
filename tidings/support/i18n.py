"""The server's own words (pages, email footers) in every language it ships: gettext
catalogues kept as `.po` sources in `tidings/locale/<lang>/LC_MESSAGES/tidings.po`.

The sources are compiled in memory when a `Messages` is built (once, at start-up), not
ahead into `.mo` files: there is then no generated file to forget on a fresh clone, in a
wheel or in CI, and none that can go stale beside its source. The catalogues hold a few
dozen strings, so the compile costs a millisecond or two.

Update the sources after changing a message (see docs/OPERATIONS.md, "Translations"):
    pybabel extract -F babel.cfg --no-location --sort-output -o tidings/locale/tidings.pot tidings
    pybabel update -N -i tidings/locale/tidings.pot -d tidings/locale -D tidings
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "tidings"
DEFAULT_LANGUAGE = "en"
MAX_ACCEPTED = 32  # the languages of an Accept-Language header read at most


def _compiled(po_text: bytes, language: str) -> gettext.GNUTranslations:
    catalog = read_po(io.BytesIO(po_text), locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    # Fuzzy entries are a translator's guess, not a translation: left out, as msgfmt does.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Messages:
    """The translations by language; `for_locale` picks the best one for a contact."""

    def __init__(self, catalogues: Mapping[str, gettext.NullTranslations]) -> None:
        self._catalogues = dict(catalogues)
        self._fallback = self._catalogues.get(DEFAULT_LANGUAGE, gettext.NullTranslations())

    @classmethod
    def load(cls) -> Messages:
        """Every catalogue shipped in the package (a broken one fails here, at start-up)."""
        root = resources.files("tidings").joinpath("locale")
        found: dict[str, gettext.NullTranslations] = {}
        for folder in root.iterdir():
            source = folder.joinpath("LC_MESSAGES", f"{DOMAIN}.po")
            if folder.is_dir() and source.is_file():
                found[folder.name] = _compiled(source.read_bytes(), folder.name)
        return cls(found)

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._catalogues)

    def language(self, locale: str | None) -> str:
        """The shipped language for a contact's locale: itself (`de_AT`), else its
        language (`de`), else the default."""
        for candidate in chain(locale):
            if candidate in self._catalogues:
                return candidate
        return DEFAULT_LANGUAGE

    def for_locale(self, locale: str | None) -> gettext.NullTranslations:
        return self._catalogues.get(self.language(locale), self._fallback)

    def accepted(self, header: str | None) -> str | None:
        """The shipped language a browser's `Accept-Language` ranks first (`de-DE,de;q=0.9`
        -> `de`), for a page that knows no contact (a link that names nobody); None when
        the header names none of them."""
        ranked = []
        for order, item in enumerate((header or "").split(",")[:MAX_ACCEPTED]):
            tag, _, params = item.partition(";")
            weight = params.strip().removeprefix("q=") if params.strip() else "1"
            try:
                quality = float(weight)
            except ValueError:
                continue
            if 0 < quality <= 1 and tag.strip() not in ("", "*"):
                ranked.append((-quality, order, tag.strip().replace("-", "_")))
        for _quality, _order, tag in sorted(ranked):
            for candidate in (tag, tag.split("_")[0].lower()):
                if candidate in self._catalogues:
                    return candidate
        return None


def chain(locale: str | None) -> list[str]:
    """`de_AT` -> ["de_AT", "de", "en"]: the order in which to look for a text."""
    found: list[str] = []
    if locale:
        found.append(locale)
        language = locale.replace("-", "_").split("_")[0]
        if language != locale:
            found.append(language)
    if DEFAULT_LANGUAGE not in found:
        found.append(DEFAULT_LANGUAGE)
    return found
