# Catalogue, shops, orders and payments arrive with the storefront issue (SPEC §6).
