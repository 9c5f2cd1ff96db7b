from django import template

from core.money import format_money, format_rate

register = template.Library()


@register.filter(name="money")
def money(amount) -> str:
    """{{ product.price|money }} → ¥19.90 (symbol from settings.CURRENCY)."""
    return format_money(amount)


@register.filter(name="rate")
def rate(value) -> str:
    """{{ options.coupon_discount_rate|rate }} → 5% (a stored rate as a percentage, as many places as it needs)."""
    return format_rate(value)
