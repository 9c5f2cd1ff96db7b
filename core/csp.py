"""Additions to the site-wide Content-Security-Policy for one response (django-csp reads them off the response)."""


def allow_images_from(response, origins: list[str]) -> None:
    """Let this response's page show images from `origins` (each scheme://host[:port]): they join img-src for this
    response only, the site-wide policy allowing our own origin alone."""
    if origins:
        response._csp_update = {"img-src": origins}
        response._csp_update_ro = {"img-src": origins}
