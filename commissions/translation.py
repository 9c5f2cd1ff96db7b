"""The plan's name in each language (django-modeltranslation, issue #23): members see it on their pages."""

from modeltranslation.translator import TranslationOptions, register

from commissions.models import CommissionPlan


@register(CommissionPlan)
class CommissionPlanTranslationOptions(TranslationOptions):
    fields = ("name",)
    required_languages = {"en": ("name",)}
