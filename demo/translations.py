"""The demo catalogue in Simplified Chinese (issue #23): every category, product title and description, keyed on
the English text of demo/shops.py, so the demo reads in one language in either.

Only an empty Chinese value is filled: a second run, or a translation staff changed, is left alone. The plan's and
the networks' Chinese names come with their migrations (commissions 0013, networks 0008); shop names and
descriptions are the members' own words and stay as the member wrote them.
"""

from django.db.models import Q

from shops.models import Category, Product

CATEGORY_NAMES = {
    "Tea": "茶叶",
    "Snacks": "休闲零食",
    "Home & Kitchen": "家居厨房",
    "Beauty": "美妆护肤",
    "Digital": "数码配件",
}

# English title → (Chinese title, Chinese description)
PRODUCT_TEXTS = {
    "West Lake Longjing green tea 250 g": (
        "西湖龙井 明前特级绿茶 250g",
        "杭州明前春茶，纯手工炒制。入口甘甜，豆香清雅，回味带板栗香。",
    ),
    "Anxi Tieguanyin oolong tea 500 g": (
        "安溪铁观音 轻焙火乌龙茶 500g",
        "福建安溪铁观音，轻焙火工艺，7g 小袋真空独立包装，冲泡方便。",
    ),
    "Yunnan Pu'er ripe tea cake 357 g": (
        "云南勐海普洱熟茶饼 357g",
        "经典 357g 七子饼，勐海原料，陈化五年；陈香醇厚，汤色红浓，入口顺滑。",
    ),
    "Sichuan spicy beef jerky 200 g": (
        "四川麻辣牛肉干 200g",
        "风干牛肉条，花椒与辣椒调味：麻、辣、有嚼劲，追剧下酒都合适。",
    ),
    "Daily mixed nuts, 30 packs": (
        "每日坚果 30 包装",
        "核桃、腰果、扁桃仁、蔓越莓和葡萄干，每包 25g，一天一包，吃满一个月。",
    ),
    "Guangzhou wife cakes, box of 8": (
        "广州老婆饼 8 个礼盒装",
        "层层酥皮的广式点心，冬瓜蓉馅，广州本地新鲜烘焙。",
    ),
    "Jingdezhen porcelain tea set, 6 cups": (
        "景德镇青花瓷功夫茶具 六杯套装",
        "手绘青花盖碗、公道杯及六只品茗杯，礼盒包装，自用送礼两相宜。",
    ),
    "Bamboo steamer, 2 tiers, 26 cm": (
        "天然竹蒸笼 两层 26cm",
        "天然竹制，带盖；蒸饺子、包子、蔬菜都合适。",
    ),
    "Hangzhou mulberry silk pillowcase": (
        "杭州桑蚕丝枕套",
        "22 姆米 6A 级桑蚕丝，隐形拉链，亲肤顺滑，呵护头发与肌肤。",
    ),
    "Camellia oil hand cream 50 ml": (
        "山茶油护手霜 50ml",
        "湖南冷榨山茶籽油，质地轻薄，好吸收不油腻。",
    ),
    "Rice water facial masks, 10 sheets": (
        "大米发酵精华面膜 10 片装",
        "发酵大米精华贴片面膜，提亮肤色，改善暗沉，肤色更均匀。",
    ),
    "65 W GaN USB-C fast charger": (
        "65W 氮化镓 USB-C 快充充电器",
        "两个 USB-C 口加一个 USB-A 口，笔记本电脑和手机可同时快充。",
    ),
    "Bluetooth earbuds with charging case": (
        "真无线蓝牙耳机 带充电仓",
        "蓝牙 5.3，通话降噪，搭配充电仓续航 30 小时。",
    ),
}


def demo_catalogue_translate() -> int:
    """Fill the Chinese name of every demo category and the Chinese title and description of every demo product
    where it is empty; returns how many rows changed. Idempotent."""
    changed = 0
    empty = Q(name_zh_hans__isnull=True) | Q(name_zh_hans="")
    for english, chinese in CATEGORY_NAMES.items():
        changed += Category.objects.filter(empty, name_en=english).update(name_zh_hans=chinese)
    for english, (title, description) in PRODUCT_TEXTS.items():
        untitled = Q(title_zh_hans__isnull=True) | Q(title_zh_hans="")
        changed += Product.objects.filter(untitled, title_en=english).update(title_zh_hans=title)
        undescribed = Q(description_zh_hans__isnull=True) | Q(description_zh_hans="")
        Product.objects.filter(undescribed, title_en=english).update(description_zh_hans=description)
    return changed
