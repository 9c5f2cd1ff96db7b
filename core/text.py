"""Text helpers shared by the apps: a Latin "slug" from any name, Chinese included (its pinyin)."""

import re

from django.utils.text import slugify

# The CJK unified ideographs (and extension A, and the compatibility block): what pypinyin reads as Chinese.
HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters, digits and single hyphens from `text`: each run of Chinese characters becomes its
    toneless pinyin written together (张小明 → zhangxiaoming), every other run is slugified (Café Li → cafe-li), and
    the runs are joined by hyphens (张小明 Tea → zhangxiaoming-tea). "" when nothing Latin can be made of it."""
    parts = []
    position = 0
    matches = list(HAN_RUN.finditer(text or ""))
    if matches:
        # Imported here, not at the top: pypinyin's dictionaries (its phrases make 重庆 chongqing, not zhongqing)
        # take about 57 MB, which only a process that romanises a Chinese name should pay, not every worker that
        # imports shops.selectors. A third-party library, not one of our apps: no layer is bypassed.
        from pypinyin import Style, lazy_pinyin
    for match in matches:
        parts.append(slugify(text[position : match.start()]))
        # ü is written v (lü → lv): plain ASCII, as pinyin keyboards type it.
        parts.append("".join(lazy_pinyin(match.group(), style=Style.NORMAL)).lower())
        position = match.end()
    parts.append(slugify((text or "")[position:]))
    joined = "-".join(part for part in parts if part)
    return re.sub(r"[^a-z0-9]+", "-", joined).strip("-")
