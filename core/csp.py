"""Additions to the site-wide Content-Security-Policy for one response (django-csp reads them off the response)."""


def allow_images_from(response, origins: list[str]) -> None:
    """Let this response's page show images from `origins` (each scheme://host[:port]): they join img-src for this
    response only, the site-wide policy allowing our own origin alone."""
    if origins:
        for attribute in ("_csp_update", "_csp_update_ro"):
            update = dict(getattr(response, attribute, None) or {})
            update["img-src"] = list(origins)
            setattr(response, attribute, update)


def allow_scripts_from(response, origins: list[str]) -> None:
    """Let this response's page load scripts from `origins` (WeChat's JS-SDK on the shop pages), alongside any
    images allowed for it."""
    if origins:
        for attribute in ("_csp_update", "_csp_update_ro"):
            update = dict(getattr(response, attribute, None) or {})
            update["script-src"] = list(origins)
            setattr(response, attribute, update)
