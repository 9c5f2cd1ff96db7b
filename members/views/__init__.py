"""The shop owner's pages, one module per part of the dashboard. Thin: they read through the selectors of the apps
below and write through their services."""
