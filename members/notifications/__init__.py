"""Notifications: what happened to a member's or buyer's money and orders, told through their chosen channels."""
