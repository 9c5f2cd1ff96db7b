"""The OpenAPI schema generates without warnings, and the Swagger UI is served from local assets."""

import re

import pytest
from django.core.management import call_command


def test_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    text = target.read_text()
    for path in ("/api/v1/me/", "/api/v1/shop/listings/{listing_id}/", "/api/v1/public/shops/{slug}/"):
        assert f"{path}:" in text
    assert "tokenAuth" in text


@pytest.mark.django_db
def test_schema_endpoint_serves_openapi(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    catalogue = schema["paths"]["/api/v1/catalogue/"]["get"]
    assert {"search", "category", "sort", "page", "page_size"} <= {p["name"] for p in catalogue["parameters"]}


@pytest.mark.django_db
def test_docs_page_uses_local_assets_only(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "/static/drf_spectacular_sidecar/" in html
    assert not re.search(r"https?://(cdn|unpkg|cdnjs|fastly)\.", html)
    assert "jsdelivr" not in html


@pytest.mark.django_db
def test_an_api_url_that_matches_nothing_is_a_json_404_in_the_error_shape(client):
    response = client.get("/api/v1/commissions/-3/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": "Not found.", "fields": {}}
    assert "text/html" in client.get("/no-such-page/")["Content-Type"]
