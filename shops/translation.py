"""Catalogue content in each language (django-modeltranslation, issue #23).

Each field below gets one column per language (`title_en`, `title_zh_hans`); `product.title` reads the active
language's value, falling back to English, and ORM lookups on `title` go to the active language's column. English is
required (the language of record and the fallback). Shop names and descriptions are not here: they are the member's
own words, shown as written. Order lines copy the title as the buyer saw it (see docs/languages.md).
"""

from modeltranslation.translator import TranslationOptions, register

from shops.models import Category, Product, ProductMaterial


@register(Category)
class CategoryTranslationOptions(TranslationOptions):
    fields = ("name",)
    required_languages = {"en": ("name",)}
    # Names are unique per language: an empty translation is stored as NULL, so many categories may lack one.
    empty_values = {"name": None}


@register(Product)
class ProductTranslationOptions(TranslationOptions):
    fields = ("title", "description")
    required_languages = {"en": ("title",)}


@register(ProductMaterial)
class ProductMaterialTranslationOptions(TranslationOptions):
    # The suggested words members post with their link: a Chinese member posts Chinese words.
    fields = ("text",)
