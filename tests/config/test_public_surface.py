"""What users and integrators rely on stays put while the code moves between apps: every URL still resolves, and
the OpenAPI schema is the same, to the byte, as the committed snapshot.

A change that means to alter the surface (a new page, a new API field) updates the snapshots on purpose:
`SURFACE_UPDATE=1 pytest tests/config/test_public_surface.py`, and the diff of `tests/config/surface/` is then
part of the review.
"""

import os
import re
from pathlib import Path

import pytest
import yaml
from django.urls import URLResolver, get_resolver, resolve
from django.utils import translation
from drf_spectacular.generators import SchemaGenerator

SURFACE = Path(__file__).parent / "surface"
ROUTES = SURFACE / "urls.txt"
SCHEMA = SURFACE / "openapi.yaml"
UPDATE = os.environ.get("SURFACE_UPDATE") == "1"
ADMIN_CATCH_ALL = "(?P<url>.*)$"  # the admin's own 404 for any address it does not know

# One value per converter and per regex group, so that a route can be turned into an address to resolve.
SAMPLES = {"int": "1", "path": "1", "slug": "demo", "str": "abc"}
REGEX_GROUP = re.compile(r"\(\?P<(\w+)>([^)]*)\)")


def routes() -> list[str]:
    def walk(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    return sorted(set(walk(get_resolver())))


def address(route: str) -> str:
    """An address the route matches: converters by SAMPLES, regex groups by their first alternative (or 1)."""
    path = re.sub(r"<(\w+):\w+>", lambda match: SAMPLES[match.group(1)], route)

    def group(match: re.Match) -> str:
        body = match.group(2)
        if body in ("[0-9]+", r"\d+"):
            return "1"
        if body == ".*":
            return "1"
        return body.split("|")[0]

    path = REGEX_GROUP.sub(group, path)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".")
    return "/" + path


def test_every_url_of_the_snapshot_still_resolves(settings):
    current = routes()
    if UPDATE:
        ROUTES.write_text("\n".join(current) + "\n", encoding="utf-8")
    # Addresses are resolved as a client sends them, under whatever ADMIN_URL the snapshot was taken with.
    settings.ADMIN_URL = "admin/"

    lost = []
    for route in ROUTES.read_text(encoding="utf-8").split():
        path = address(route)
        try:
            match = resolve(path)
        except Exception:  # a Resolver404, or a converter refusing the sample: reported below
            lost.append(path)
            continue
        if match.route.endswith(ADMIN_CATCH_ALL) and not route.endswith(ADMIN_CATCH_ALL):
            lost.append(path)
    assert lost == []


# The integer bounds of the database's column types: drf-spectacular documents a model field's range as the backend
# reports it (a small integer is unbounded on SQLite, 32767 on PostgreSQL) and, from the range, an integer's format
# (int64 past 2**31), so bounds and integer formats are left out of the comparison.
DATABASE_INTEGER_BOUNDS = {2**15 - 1, -(2**15), 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)}


def without_database_bounds(node):
    if isinstance(node, dict):
        return {
            key: without_database_bounds(value)
            for key, value in node.items()
            if not (key in ("maximum", "minimum") and value in DATABASE_INTEGER_BOUNDS)
            and not (key == "format" and value in ("int32", "int64"))
        }
    if isinstance(node, list):
        return [without_database_bounds(item) for item in node]
    return node


def test_the_openapi_schema_is_the_committed_one():
    with translation.override("en"):
        schema = SchemaGenerator().get_schema(request=None, public=True)
    text = yaml.safe_dump(without_database_bounds(schema), allow_unicode=True, sort_keys=True, width=120)
    if UPDATE:
        SCHEMA.write_text(text, encoding="utf-8")

    assert text == SCHEMA.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("s/<slug:slug>/p/<int:product_id>/", "/s/demo/p/1/"),
        ("^dashboard/links/(?P<link_id>[0-9]+)/qr\\.(?P<fmt>svg|png)$", "/dashboard/links/1/qr.svg"),
    ],
)
def test_a_route_becomes_an_address_it_matches(route, expected):
    assert address(route) == expected


def test_the_database_bounds_are_left_out_and_the_others_kept():
    field = {"type": "integer", "format": "int64", "maximum": 32767, "minimum": 1}

    assert without_database_bounds({"schema": field}) == {"schema": {"type": "integer", "minimum": 1}}
