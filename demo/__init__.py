"""The demo: `manage.py demo` (demo/management/commands/demo.py) and the demo data of every app it fills (demo/shops.py:
catalogue, shops, orders and the sandbox network's products; demo/payouts.py: the ledger's history, a payout account
and a withdrawal). It sits just below config: it may use every app's services, and no app imports it."""
