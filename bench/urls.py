"""The project's URLs plus a bare redirect: the baseline that bench/redirect.py measures /l/<code> against."""

from django.http import HttpResponseRedirect
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def bare_redirect(request):
    """A fixed 302 with no lookup, no counter and no cookie: what Django and the middleware cost alone."""
    return HttpResponseRedirect("/")


urlpatterns = [path("bench/bare-redirect/", bare_redirect), *project_urlpatterns]
