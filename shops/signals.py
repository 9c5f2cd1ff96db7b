"""What the shops app announces to the apps above it, which it never imports: the storefront's one port upward.

- `order_paid` (argument `orders`: a list of `(order_id, sharer_id)`, one send for all the orders one transaction
  marks paid: a batch of payment notifications is one send) is sent INSIDE the transaction that marks them paid. A
  receiver that writes does so in that transaction, so the payment and what follows from it commit or roll back
  together; an exception in a receiver rolls the payment back (`send`, not `send_robust`). The commission ledger's
  keeper (commissions, connected in its AppConfig.ready) queues the orders' splits with the upline as it is now.
- `refund_recorded` (argument `refund_id`) is sent AFTER the commit that recorded a refund (a late payment's
  included). Receivers only ask for work; the commission sweep finds a refund whose message was lost.

- `order_status_changed` (argument `changes`: a list of `(order_id, from_status, to_status)`) is sent AFTER the
  commit of order transitions (paid, shipped, completed, cancelled, refunded), one send per transaction: a batch of
  payment notices that pays 500 orders is one send. Receivers only ask for
  work (a task, a cache flag): they run in the request that paid or shipped the order, and a slow receiver slows
  checkout and the payment webhooks. What they tell others (notifications, outbound webhooks) they read from the
  order's `OrderEvent` rows, which are the record: a lost send is repaired by whoever sweeps those.

No other app may be told about orders this way: what else wants to know reads shops' selectors.
"""

from django.dispatch import Signal

order_paid = Signal()
refund_recorded = Signal()
order_status_changed = Signal()
