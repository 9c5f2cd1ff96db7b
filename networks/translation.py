"""The network's name in each language (django-modeltranslation, issue #23), e.g. "Taobao Affiliate" / "淘宝联盟".

External products' titles are not translated: they are the network's own, in the language it reports them in."""

from modeltranslation.translator import TranslationOptions, register

from networks.models import Network


@register(Network)
class NetworkTranslationOptions(TranslationOptions):
    fields = ("name",)
    required_languages = {"en": ("name",)}
