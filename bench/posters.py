"""Benchmark the share poster (members/posters.py): drawing one uncached, and serving one from the cache.

    .venv/bin/python bench/posters.py [--runs 50] [--redis-url redis://127.0.0.1:6379/2]

Targets (issue #22): a poster renders in ≤ 150 ms uncached and is served from the cache in ≤ 5 ms.

What it does, in one process, with the project's settings:

1. makes the pictures a product may have, in a temporary directory: a 1200×1200 photo-like JPEG (gradients and
   grain, quality 85: what a phone upload is like), a 2000×1500 PNG with noise (the worst case for decoding and
   for the PNG encoder), and none (the fallback panel);
2. for each, draws the poster `--runs` times with `render_poster` (the font is loaded once per process, as in a
   server; the first draw, which loads it, is reported apart), with a Chinese and English title long enough to be
   cut with "…", and an emoji;
3. serves the same poster `--runs` × 20 times through `poster_png` from the cache: Django's local-memory cache, and
   Redis when `--redis-url` answers (a dedicated database; the one key written is deleted after). This is the
   whole cache path a request takes: the content's digest (SHA-256 of its inputs) and the cache read;
4. prints a markdown table: median, p95 and max wall-clock milliseconds, the median CPU milliseconds (the cost
   apart from other work on a shared machine), the PNG's size, the verdict of the median against the target, and
   the machine's load average.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.cache.backends.locmem import LocMemCache  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from members import posters  # noqa: E402
from members.posters import PosterContent, render_poster  # noqa: E402

RENDER_TARGET_MS = 150
CACHED_TARGET_MS = 5


def photo_like(path: Path) -> None:
    image = Image.linear_gradient("L").resize((1200, 1200)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for index in range(40):
        shade = (40 + index * 5, 120 + index * 2, 60 + index * 3)
        draw.ellipse((index * 25, 200 + index * 10, index * 25 + 400, 600 + index * 12), fill=shade)
    grain = Image.effect_noise((1200, 1200), 18).convert("RGB")
    image = Image.blend(image.filter(ImageFilter.GaussianBlur(6)), grain, 0.15)
    image.save(path, format="JPEG", quality=85)


def noisy_png(path: Path) -> None:
    Image.frombytes("RGB", (2000, 1500), os.urandom(2000 * 1500 * 3)).save(path, format="PNG")


def content(picture: str) -> PosterContent:
    return PosterContent(
        kind="product",
        title="有机高山乌龙茶 礼盒装 Organic high-mountain oolong tea, 250 g gift tin, spring harvest 🍵 " * 2,
        price="¥128.00",
        byline="小明推荐 · Recommended by Ming",
        tagline="分享赚",
        scan_hint="长按识别二维码",
        url="https://shop.example.com/l/abcdEFGH23",
        picture=picture,
        picture_version=picture,
        fallback_mark="有",
    )


def timings(function, runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each run (CPU time shows the cost apart from other work on the machine)."""
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return wall, cpu


def row(name: str, measured: tuple[list[float], list[float]], target: float, size: str = "") -> str:
    wall, cpu = sorted(measured[0]), measured[1]
    p95 = wall[min(len(wall) - 1, int(len(wall) * 0.95))]
    median, median_cpu = statistics.median(wall), statistics.median(cpu)
    verdict = "meets" if median <= target else "MISSES"
    return (
        f"| {name} | {len(wall)} | {median:.2f} | {p95:.2f} | {wall[-1]:.2f} | {median_cpu:.2f} | {size} | "
        f"median ≤ {target} ms: {verdict} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/2")
    args = parser.parse_args()

    print(f"font: {posters.font_path()}", file=sys.stderr)
    lines = [
        "| case | runs | median ms | p95 ms | max ms | median CPU ms | PNG | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    with tempfile.TemporaryDirectory() as folder:
        photo, noise = Path(folder) / "photo.jpg", Path(folder) / "noise.png"
        photo_like(photo)
        noisy_png(noise)
        started = time.perf_counter()
        render_poster(content(str(photo)))
        first_ms = (time.perf_counter() - started) * 1000
        lines.append(
            f"| first draw in the process (loads the font) | 1 | {first_ms:.2f} | | | | | (once per process) |"
        )
        for name, picture in (("1200×1200 JPEG photo", photo), ("2000×1500 PNG of noise", noise), ("no picture", "")):
            poster = content(str(picture) if picture else "")
            size = f"{len(render_poster(poster)) // 1024} KiB"
            lines.append(row(f"uncached: {name}", timings(lambda p=poster: render_poster(p), args.runs),
                             RENDER_TARGET_MS, size))  # fmt: skip

        poster = content(str(photo))
        png = render_poster(poster)
        caches = [("local memory", LocMemCache("bench-posters", {}))]
        try:
            from django.core.cache.backends.redis import RedisCache

            redis_cache = RedisCache(args.redis_url, {})
            redis_cache.set("bench-posters-ping", 1, 5)
            caches.append((f"Redis ({args.redis_url})", redis_cache))
        except Exception as error:
            print(f"Redis at {args.redis_url} not used: {error}", file=sys.stderr)
        for name, backend in caches:
            posters.cache = backend  # the module's cache, as poster_png reads it
            backend.set(posters.cache_key(poster), png, 300)
            values = timings(lambda: posters.poster_png(poster), args.runs * 20)
            assert posters.poster_png(poster) == png
            lines.append(row(f"cached ({name}): digest + read", values, CACHED_TARGET_MS, f"{len(png) // 1024} KiB"))
            backend.delete(posters.cache_key(poster))
    print("\n".join(lines))
    load = os.getloadavg()
    print(f"\n{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} during the run")


if __name__ == "__main__":
    main()
