"""`{% icon "name" %}`: one icon from the sprite (core/icons.py), drawn in the text's colour at the text's size.

Decorative by default (hidden from screen readers: the words beside it say what it means). Give a label when the icon
stands alone: `{% icon "bell" label=_("Notifications") %}` names it for assistive technology. `class` adds classes
(`{% icon "check" class="icon-lg" %}`). An unknown name is an error when the template renders in DEBUG and in tests,
so a typo never ships as an empty box.
"""

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html

from core.icons import ICONS, SPRITE_PATH

register = template.Library()
_KNOWN = frozenset(ICONS)


@register.simple_tag
def icon(name: str, label: str = "", **attributes) -> str:
    if name not in _KNOWN:
        if settings.DEBUG or getattr(settings, "ICONS_STRICT", False):
            raise template.TemplateSyntaxError(
                f"Unknown icon {name!r}: add it to core.icons.ICONS and build the sprite."
            )
        return ""
    classes = " ".join(filter(None, ["icon", attributes.get("class", "")]))
    href = f"{static(SPRITE_PATH)}#{name}"
    if label:
        return format_html(
            '<svg class="{}" role="img" aria-label="{}"><use href="{}"></use></svg>', classes, label, href
        )
    return format_html(
        '<svg class="{}" aria-hidden="true" focusable="false"><use href="{}"></use></svg>', classes, href
    )
