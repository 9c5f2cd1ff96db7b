"""What a writing transaction tells the apps above about the ledger entries it wrote (`commissions.signals`).

A write collects the ids it created, released or voided in an `EntryChanges`, and `announce()` asks for one
`commission_entries_changed` send per kind of change AFTER the commit (none if it rolls back): the split, the
release, a refund and an external line's revision each announce once per transaction, never per entry. The ids
are collected where the write already knows them (the rows it created, or a select of the ids it is about to
update under the same locks), so announcing costs one cheap query at most."""

from dataclasses import dataclass, field
from functools import partial

from django.db import transaction

from commissions.models import CommissionEntry
from commissions.signals import AVAILABLE, CREATED, REVERSED, commission_entries_changed


@dataclass
class EntryChanges:
    created: list[int] = field(default_factory=list)
    available: list[int] = field(default_factory=list)
    reversed: list[int] = field(default_factory=list)

    def announce(self) -> None:
        """Send one `commission_entries_changed` per kind of change after the current transaction commits."""
        for change, ids in ((CREATED, self.created), (AVAILABLE, self.available), (REVERSED, self.reversed)):
            if ids:
                transaction.on_commit(
                    partial(
                        commission_entries_changed.send, sender=CommissionEntry, entry_ids=sorted(ids), change=change
                    )
                )
