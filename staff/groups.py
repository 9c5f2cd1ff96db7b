"""The staff groups and exactly what each may do (SPEC §1: staff run the platform through Django admin).

`python manage.py staff_groups` makes the database match this table: it creates missing groups and gives each
exactly these permissions, removing any added by hand. Superusers are not a group: they may do everything.

Each permission is `app_label.codename`. Django's own `view_`/`add_`/`change_` permissions gate admin pages;
in this project `change_` on orders, withdrawals and batches gates the admin *actions* (which call services),
since those rows are never edited by hand.
"""

SUPPORT = "support"
FINANCE = "finance"
COMPLIANCE = "compliance"

# Everyone in the back office may see the overview and look up who a member is.
_COMMON = (
    "staff.view_staff_overview",
    "referrals.view_member",
)

GROUP_PERMISSIONS: dict[str, tuple[str, ...]] = {
    # Orders, refunds and shops: answer buyers and shop owners, ship, cancel, refund.
    SUPPORT: (
        *_COMMON,
        "shops.view_order",
        "shops.change_order",  # the ship / complete / cancel / refund actions
        "shops.view_buyer_contact",
        "shops.view_orderline",
        "shops.view_payment",
        "shops.view_refund",
        "shops.view_orderevent",
        "shops.view_webhookevent",
        "shops.view_product",
        "shops.view_category",
        "shops.view_shop",
        "shops.change_shop",  # close an abusive shop, fix its name
        "shops.view_shoplisting",
        "shops.change_shoplisting",
        "shops.view_sharelink",
        "shops.change_sharelink",  # switch off an abusive link
        "shops.view_sharelinkdailystat",
        "commissions.view_commissionentry",  # "why is my commission this amount?"
        "networks.view_externalorder",  # "my Taobao sale is not in my earnings"
        "networks.view_externalproduct",
        "shops.view_externallisting",
        "networks.view_trackingid",
        # Outbound webhooks: "my system did not get the order": the endpoint, its deliveries and their attempts.
        "webhooks.view_endpoint",
        "webhooks.view_event",
        "webhooks.view_delivery",
        "webhooks.change_delivery",  # the replay action
        "accounts.view_identity",  # masked: "why can I not withdraw?"
        # Business payees' invoices: "where is my invoice?" (look only; finance reviews them).
        "payouts.view_invoice",
        "payouts.view_invoiceevent",
    ),
    # Withdrawals, payout batches and payout accounts with full numbers.
    FINANCE: (
        *_COMMON,
        "payouts.view_withdrawal",
        "payouts.change_withdrawal",  # approve, reject, batch, mark paid or failed
        "commissions.view_riskflag",  # why a withdrawal waits for risk review
        "payouts.view_withdrawalevent",
        "payouts.view_payoutbatch",
        "payouts.change_payoutbatch",  # send, export, upload results
        "payouts.view_payoutaccount",
        "payouts.view_unmasked_payoutaccount",
        "payouts.view_memberwallet",
        # Staff adjustments of a member's balance (payouts/adjustments.py): credit or debit with a reason; above
        # FOUR_EYES_THRESHOLD a second finance user approves (four eyes).
        "payouts.view_balanceadjustment",
        "payouts.add_balanceadjustment",
        "payouts.view_sandboxtransfer",
        "payouts.view_transfer",
        # Identities (issue #24): the designated role that may read a legal name and ID number in full (each read
        # audited), correct an identity with a reason and set the status of a document checked by hand.
        "accounts.view_identity",
        "accounts.change_identity",
        "accounts.view_full_identity",
        # Income tax withheld at payout (docs/tax.md): the entries, and the rules (add a draft, activate it).
        "payouts.view_taxwithholding",
        "payouts.view_withholdingrule",
        "payouts.add_withholdingrule",
        "payouts.change_withholdingrule",
        # Business payees' invoices (docs/tax.md, "Business payees"): review them (accept, reject with a reason).
        "payouts.view_invoice",
        "payouts.change_invoice",
        "payouts.view_invoiceevent",
        # The daily reconciliation with the providers' bills: look, run a day again, repair or resolve a difference.
        "staff.view_reconciliationrun",
        "staff.change_reconciliationrun",
        "staff.view_reconciliationdifference",
        "staff.change_reconciliationdifference",
        # The tax reports (docs/tax.md): generate the quarterly report of 国务院令第810号 and the monthly withholding
        # summary, and download their files, which hold full ID numbers (also needs accounts.view_full_identity;
        # every download audited).
        "staff.view_taxreport",
        "staff.add_taxreport",
        "staff.download_taxreport",
        "commissions.view_commissionentry",
        "shops.view_order",
        # External networks: the money they report, the sync, the report files.
        "networks.view_network",
        "networks.change_network",  # "sync now", refresh the product feed, switch a network off
        "networks.view_externalorder",
        "networks.change_externalorder",  # attribute an unmatched order to a member
        "networks.view_syncrun",
        "networks.view_reportimport",
        "networks.add_reportimport",  # import a network's order-report file
        "networks.view_externalproduct",
        "networks.view_trackingid",
        "networks.add_trackingid",  # enter a member's 推广位 created in the 淘宝联盟 console
    ),
    # The caps, the plans, the reports and the audit trail.
    COMPLIANCE: (
        *_COMMON,
        "commissions.view_compliancepolicy",
        "commissions.add_compliancepolicy",  # publish a new version
        "commissions.view_commissionplan",
        "commissions.add_commissionplan",
        "commissions.change_commissionplan",  # activate
        "commissions.view_compliance_report",
        "commissions.view_plansimulation",
        "commissions.add_plansimulation",
        "commissions.view_commissionentry",
        # Fraud and risk review (issue #25): the queue, its decisions, and tuning the rules.
        "commissions.view_riskflag",
        "commissions.review_risk",
        "commissions.view_riskrule",
        "commissions.change_riskrule",
        "referrals.view_treeevent",
        "shops.view_order",
        "staff.view_audit_log",
        # The evidence pack for a regulator or an auditor (docs/compliance.md): ask for one, download it (audited).
        "staff.view_evidencepack",
        "staff.add_evidencepack",
        "staff.download_evidencepack",
        "networks.view_network",
        "networks.view_externalorder",
    ),
}
