"""Build static/icons/sprite.svg from the Lucide icons named in core.icons.ICONS.

    npm ci                       # fetches lucide-static (package.json) into node_modules/
    python manage.py build_icons # writes static/icons/sprite.svg

The sprite is committed, so neither npm nor node_modules is needed to run the site.
"""

import re
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.icons import ICONS, SPRITE_PATH

_SVG = re.compile(r"<svg\b[^>]*>(?P<body>.*)</svg>", re.S)
# On each symbol: a <use> copies the symbol, not the sprite's root, so attributes on the root would not reach it.
_STROKE = ' fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"'
_VERSION = re.compile(r"@license lucide-static v(?P<version>[\w.]+)")


def sprite_from(source: Path, names=ICONS) -> str:
    """The sprite's text: one <symbol> per name, in the order given, drawn with Lucide's stroke attributes."""
    symbols, version = [], ""
    for name in names:
        path = source / f"{name}.svg"
        if not path.is_file():
            raise CommandError(f"No icon {name!r} in {source} (is lucide-static installed? run npm ci)")
        text = path.read_text(encoding="utf-8")
        match = _SVG.search(text)
        if match is None:
            raise CommandError(f"{path} is not an SVG file")
        version = version or (_VERSION.search(text) or {"version": ""})["version"]
        body = "\n".join(f"    {line.strip()}" for line in match["body"].strip().splitlines() if line.strip())
        symbols.append(f'  <symbol id="{name}" viewBox="0 0 24 24"{_STROKE}>\n{body}\n  </symbol>')
    header = (
        f"<!-- Lucide icons (lucide-static {version}), ISC licence: static/icons/LICENSE-lucide.txt. "
        "Built by manage.py build_icons from core/icons.py; do not edit. -->"
    )
    return f'{header}\n<svg xmlns="http://www.w3.org/2000/svg">\n' + "\n".join(symbols) + "\n</svg>\n"


class Command(BaseCommand):
    help = "Build the icon sprite (static/icons/sprite.svg) from lucide-static's SVG files."

    def add_arguments(self, parser):
        parser.add_argument(
            "--source",
            type=Path,
            default=Path(settings.BASE_DIR) / "node_modules" / "lucide-static" / "icons",
            help="lucide-static's icons/ folder (default: node_modules/lucide-static/icons)",
        )

    def handle(self, *args, source: Path, **options):
        target = Path(settings.BASE_DIR) / "static" / SPRITE_PATH
        target.write_text(sprite_from(source), encoding="utf-8")
        self.stdout.write(f"Wrote {len(ICONS)} icons to {target.relative_to(settings.BASE_DIR)}")
