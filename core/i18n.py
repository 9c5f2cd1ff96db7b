"""Helpers for translated content (django-modeltranslation, issue #23) in queries that modeltranslation does not
rewrite.

On a registered model (`Product.objects…`) modeltranslation rewrites `title` to the active language's column
(`title_zh_hans`), with no fallback in SQL. Queries through an unregistered model (`ShopListing`, `CommissionEntry`,
`ExternalProduct` …) reach the untranslated base column instead. These helpers name the language columns
explicitly: a search that matches any language, a value in the active language that falls back to English, and
the columns to load so that reading the translated attribute costs no extra query.
"""

from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils.translation import get_language
from modeltranslation.settings import AVAILABLE_LANGUAGES, DEFAULT_LANGUAGE
from modeltranslation.utils import build_localized_fieldname


def translation_paths(path: str) -> tuple[str, ...]:
    """Every language's column of a translated field: "network__name" → ("network__name_en",
    "network__name_zh_hans"). For `.only()` through an unregistered model."""
    *related, field = path.split("__")
    return tuple("__".join([*related, build_localized_fieldname(field, language)]) for language in AVAILABLE_LANGUAGES)


def in_any_language(path: str, value: str, lookup: str = "icontains") -> Q:
    """`path` matches `value` in any language: a buyer searching 蜂蜜 or "honey" finds the same product."""
    query = Q()
    for column in translation_paths(path):
        query |= Q(**{f"{column}__{lookup}": value})
    return query


def active_language_column(path: str) -> str:
    *related, field = path.split("__")
    language = get_language() or DEFAULT_LANGUAGE
    if language not in AVAILABLE_LANGUAGES:
        language = language.split("-")[0] if language.split("-")[0] in AVAILABLE_LANGUAGES else DEFAULT_LANGUAGE
    return "__".join([*related, build_localized_fieldname(field, language)])


def localized(path: str, output_field=None):
    """The value of a translated field in the active language, or in English when it has none: for ORDER BY,
    values() and CSV rows through any model. Evaluated when the query is built (so, in the request's language)."""
    *related, field = path.split("__")
    english = F("__".join([*related, build_localized_fieldname(field, DEFAULT_LANGUAGE)]))
    active = active_language_column(path)
    if active == english.name:
        return english
    return Coalesce(NullIf(F(active), Value("")), english, output_field=output_field or CharField())
