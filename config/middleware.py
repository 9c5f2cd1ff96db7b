"""Project middleware."""

from csp.middleware import CSPMiddleware


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware (settings.CONTENT_SECURITY_POLICY), except on redirects.

    A 3xx carries no document for a policy to protect, and building the header costs about 40 µs a response: a
    large share of the share-link redirect, a benchmarked hot path (bench/redirect.py, docs/benchmarks.md).
    """

    def process_response(self, request, response):
        if 300 <= response.status_code < 400:
            return response
        return super().process_response(request, response)
