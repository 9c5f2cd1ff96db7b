"""REST API v1 for the signed-in member (members/api/urls.py), one module per part, as the pages."""
