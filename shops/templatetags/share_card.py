"""The share card of a shop or product page: Open Graph tags (what WeChat, chat apps and social sites show for a
pasted link) and, in WeChat's browser when a ticket provider is configured, the JS-SDK share config."""

from django import template
from django.conf import settings

from core.site_url import absolute_url
from shops.wechat_share import in_wechat, share_config

register = template.Library()

DESCRIPTION_LENGTH = 120


@register.inclusion_tag("shops/_share_card.html", takes_context=True)
def share_card(context, title, description="", image_url="", price=None):
    request = context["request"]
    page_url = absolute_url(request.get_full_path())
    text = " ".join((description or "").split())
    if len(text) > DESCRIPTION_LENGTH:
        text = text[: DESCRIPTION_LENGTH - 1].rstrip() + "…"
    image = absolute_url(image_url) if image_url else ""
    wechat = None
    if settings.WECHAT_JSSDK_TICKET_PROVIDER and in_wechat(request):
        config = share_config(page_url=page_url, title=title, description=text, image=image)
        wechat = config.as_json() if config else None
    return {
        "title": title,
        "description": text,
        "image": image,
        "url": page_url,
        "price": price,
        "currency": settings.CURRENCY,
        "wechat": wechat,
        "wechat_script": settings.WECHAT_JSSDK_SCRIPT_URL,
    }
