# Plans, the compliance policy and the commission ledger arrive with the commissions issue (SPEC §7).
