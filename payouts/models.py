# Balances, withdrawals and payout batches arrive with the payouts issue (SPEC §8).
