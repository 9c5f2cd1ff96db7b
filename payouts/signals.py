"""What payouts announces to the apps above it (notifications, outbound webhooks), which it never imports.

- `withdrawals_changed` (argument `changes`: a list of `(withdrawal_id, from_status, to_status)`) is sent AFTER
  the commit of every withdrawal transition (approved, processing, paid, failed, rejected, cancelled), one send per
  writing transaction (a batch's answers are one send). Receivers only ask for work; the record is the
  `WithdrawalEvent` rows.
"""

from django.dispatch import Signal

withdrawals_changed = Signal()
