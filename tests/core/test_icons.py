"""The icon set: the sprite holds exactly the icons core.icons names, and every icon a template draws is one of them."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template, TemplateSyntaxError

from core.icons import ICONS, SPRITE_PATH
from core.management.commands.build_icons import sprite_from

SPRITE = Path(settings.BASE_DIR) / "static" / SPRITE_PATH
TEMPLATES = Path(settings.BASE_DIR) / "templates"


def test_the_sprite_holds_exactly_the_named_icons():
    ids = re.findall(r'<symbol id="([a-z0-9-]+)"', SPRITE.read_text(encoding="utf-8"))
    assert ids == list(ICONS)


def test_every_icon_a_template_draws_is_in_the_set():
    used = set()
    for path in TEMPLATES.rglob("*.html"):
        used.update(re.findall(r'{%\s*icon\s+"([^"]+)"', path.read_text(encoding="utf-8")))
    assert used, "no template draws an icon"
    assert used <= set(ICONS), f"not in core.icons.ICONS: {sorted(used - set(ICONS))}"


def test_an_icon_is_decorative_unless_labelled():
    html = Template('{% load icons %}{% icon "bell" %}|{% icon "bell" label="Alerts" class="icon-lg" %}').render(
        Context()
    )
    decorative, labelled = html.split("|")
    assert 'aria-hidden="true"' in decorative and "/static/icons/sprite.svg#bell" in decorative
    assert 'role="img" aria-label="Alerts"' in labelled and 'class="icon icon-lg"' in labelled


def test_an_unknown_icon_is_an_error_when_strict(settings):
    settings.ICONS_STRICT = True
    with pytest.raises(TemplateSyntaxError, match="Unknown icon 'no-such-icon'"):
        Template('{% load icons %}{% icon "no-such-icon" %}').render(Context())
    settings.ICONS_STRICT = False
    assert Template('{% load icons %}{% icon "no-such-icon" %}').render(Context()) == ""


def test_build_icons_draws_each_symbol_with_the_lucide_stroke(tmp_path):
    (tmp_path / "bell.svg").write_text(
        "<!-- @license lucide-static v9.9.9 - ISC -->\n"
        '<svg class="lucide" viewBox="0 0 24 24">\n  <path d="M1 1" />\n</svg>'
    )
    sprite = sprite_from(tmp_path, names=("bell",))
    assert "lucide-static 9.9.9" in sprite
    assert '<symbol id="bell" viewBox="0 0 24 24" fill="none" stroke="currentColor"' in sprite
    assert '<path d="M1 1" />' in sprite


def test_build_icons_refuses_a_missing_icon(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No icon 'bell'"):
        sprite_from(tmp_path, names=("bell",))
