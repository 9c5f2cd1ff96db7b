"""The buyer's cart, kept in the session: one cart per shop, {product id: quantity}."""

from django.conf import settings

SESSION_KEY = "cart"
ORDERS_SESSION_KEY = "orders"  # order numbers this browser placed or looked up


class Cart:
    def __init__(self, session, shop_id: int):
        self.session = session
        self.key = str(shop_id)

    def items(self) -> dict[int, int]:
        # Reading never writes: a visitor who only browses gets no session row.
        return {int(product_id): qty for product_id, qty in self.session.get(SESSION_KEY, {}).get(self.key, {}).items()}

    def _save(self, items: dict[int, int]) -> None:
        carts = self.session.get(SESSION_KEY, {})
        if items:
            carts[self.key] = {str(product_id): qty for product_id, qty in items.items()}
        else:
            carts.pop(self.key, None)
        self.session[SESSION_KEY] = carts

    def add(self, product_id: int, quantity: int = 1) -> int:
        items = self.items()
        items[product_id] = min(items.get(product_id, 0) + quantity, settings.ORDER_MAX_QUANTITY_PER_LINE)
        self._save(items)
        return items[product_id]

    def set(self, product_id: int, quantity: int) -> None:
        items = self.items()
        if quantity <= 0:
            items.pop(product_id, None)
        else:
            items[product_id] = min(quantity, settings.ORDER_MAX_QUANTITY_PER_LINE)
        self._save(items)

    def clear(self) -> None:
        self._save({})

    def count(self) -> int:
        return sum(self.items().values())


def remember_order(session, number: str) -> None:
    numbers = session.get(ORDERS_SESSION_KEY, [])
    if number not in numbers:
        session[ORDERS_SESSION_KEY] = [*numbers[-49:], number]


def may_see_order(session, number: str) -> bool:
    return number in session.get(ORDERS_SESSION_KEY, [])
