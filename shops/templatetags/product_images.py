"""`{% product_image %}`: a stored picture as a responsive, lazily loaded <img>, or a placeholder tile.

    {% load product_images %}
    {% product_image product.image product.title "card" eager=forloop.first %}
    {% product_image shop.logo shop.name "logo" %}
    {% product_image None product.title "card" remote_url=product.image_url %}   (another platform's picture)

The presets (sizes, widths, square or not) are in core.thumbnails.PRESETS. The tile shows when there is no picture or
it cannot be read (missing or broken file): a picture icon and the first letter of `alt`. Classes are styled in
static/css/site.css (section 4b); no inline style (the Content Security Policy forbids it).
"""

from django import template

from core.thumbnails import PRESETS, responsive_image

register = template.Library()


@register.inclusion_tag("shops/_product_image.html")
def product_image(image, alt="", preset="card", *, eager=False, css_class="", remote_url="", letter=""):
    """`letter`: whose first letter the placeholder shows, when not `alt`'s (e.g. the shop's name)."""
    if preset not in PRESETS:
        raise template.TemplateSyntaxError(f"product_image: unknown preset {preset!r} (one of {', '.join(PRESETS)})")
    shape = PRESETS[preset]
    picture = None if remote_url else responsive_image(image, preset)
    alt = str(alt or "")
    return {
        "picture": picture,
        "remote_url": remote_url,
        "box": shape.box,
        "alt": alt,
        "letter": str(letter or alt).strip()[:1].upper(),
        "preset": preset,
        "eager": bool(eager),
        "css_class": css_class,
    }
