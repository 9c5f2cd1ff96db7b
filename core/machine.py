"""Endpoints that machines call (payment and transfer notifications): they skip the page middleware.

A provider's notification is a signed POST from a server: no session, no language, no signed-in user, no page to
frame or to protect with a policy. At a peak they come by the thousand a second (issue #21: 1,000 payment
notifications a second on two cores), and the page middleware (sessions, locale, CSRF, auth, messages, the
framing and CSP headers, django-axes) costs about a quarter of such a request.

`@machine_endpoint` marks a view; `config.middleware.MachineEndpointMiddleware`, first in MIDDLEWARE, serves the
marked views' addresses itself and hands every other request to the rest of the stack. The addresses stay where
they are in the URLconf (reverse() finds them as before): the middleware reads them from it once.
"""

from django.urls import URLPattern, URLResolver
from django.urls.resolvers import RegexPattern, RoutePattern


def machine_endpoint(view):
    """Mark `view` as called only by machines (a provider's notification): no page middleware runs for it.

    The view must not need what the middleware gives: the session, request.user, the chosen language, messages, a
    CSRF check (a provider cannot send a token: mark it csrf_exempt too) or the page headers."""
    view.machine_endpoint = True
    return view


def machine_patterns(patterns) -> list:
    """The marked views' URL patterns among `patterns` (a URLconf's urlpatterns), inside their includes (with their
    namespaces: the resolved view is still "shops:payment_webhook").

    Only routes written with path() are followed: a marked view under a regular expression or a language prefix is
    left to the whole stack (it works, only slower)."""
    found = []
    for pattern in patterns:
        if not isinstance(pattern.pattern, RoutePattern):
            continue
        if isinstance(pattern, URLResolver):
            inner = machine_patterns(pattern.url_patterns)
            if inner:
                found.append(
                    URLResolver(pattern.pattern, inner, pattern.default_kwargs, pattern.app_name, pattern.namespace)
                )
        elif getattr(pattern.callback, "machine_endpoint", False):
            found.append(pattern)
    return found


def machine_routes(patterns, prefix: str = "") -> list[tuple[str, URLPattern]]:
    """Each marked view's whole route ("payments/webhook/<str:provider>/") and its pattern."""
    routes = []
    for pattern in machine_patterns(patterns):
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes += machine_routes(pattern.url_patterns, route)
        else:
            routes.append((route, pattern))
    return routes


def machine_resolver(urlconf_patterns) -> tuple[URLResolver, tuple[str, ...]]:
    """A resolver of the marked views only, and the literal start of each one's address ("/payments/webhook/"): a
    request whose path starts with none of them is not resolved twice."""
    prefixes = tuple("/" + route.split("<", 1)[0] for route, _pattern in machine_routes(urlconf_patterns))
    return URLResolver(RegexPattern(r"^/"), machine_patterns(urlconf_patterns)), prefixes
