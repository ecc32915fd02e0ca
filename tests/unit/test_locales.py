"""The locales and zones a client may name: the list the OpenAPI document publishes is
exactly what the validators accept."""

from __future__ import annotations

import pytest

from tidings.domain.locales import check_zone, locale_tags, normalize_locale, zone_names


def test_every_listed_locale_is_accepted_and_stored_as_babel_spells_it() -> None:
    for tag in locale_tags():
        stored = normalize_locale(tag)
        assert stored.replace("_", "-").lower() == tag.replace("_", "-").lower()
    assert normalize_locale("pt-BR") == "pt_BR" and normalize_locale("de-at") == "de_AT"


@pytest.mark.parametrize("tag", ["", "xx", "DE_AT", "iw", "en_US_x", "de_AT\n", "../en"])
def test_a_locale_off_the_list_is_refused(tag: str) -> None:
    assert tag not in locale_tags()
    with pytest.raises(ValueError, match="unknown locale"):
        normalize_locale(tag)


def test_every_listed_zone_is_accepted() -> None:
    assert {"UTC", "Europe/Vienna", "America/Argentina/Buenos_Aires"} <= zone_names()
    for name in zone_names():
        assert check_zone(name) == name


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "../etc/passwd", "/usr/share/zoneinfo/UTC",
                                  "Europe/Vienna/"])
def test_a_zone_off_the_list_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        check_zone(name)
