"""Outbound webhooks for integrators: endpoints, signed deliveries, retries and their log (docs/webhooks.md)."""
