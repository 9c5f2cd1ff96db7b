from django import template

from core.money import format_money

register = template.Library()


@register.filter(name="money")
def money(amount) -> str:
    """{{ product.price|money }} → ¥19.90 (symbol from settings.CURRENCY)."""
    return format_money(amount)
