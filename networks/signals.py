"""What the networks app announces to the apps above it, which it never imports.

`external_orders_marked` is sent after the commit that marked reported order lines for the ledger
(`ExternalOrder.ledger_marked_at`): a new line, a change the network reported, an attribution by staff. The ledger's
keeper (commissions, which connects a receiver in its AppConfig.ready) brings the marked lines up to date and clears
their mark. The mark is the outbox: a signal lost (a receiver that failed, a process that stopped after the commit)
loses nothing, since the keeper also picks up marked lines on a clock. No arguments besides `sender`
(ExternalOrder).
"""

from django.dispatch import Signal

external_orders_marked = Signal()
