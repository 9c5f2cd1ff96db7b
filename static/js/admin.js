// The back office (templates/admin/base_site.html): a box that scrolls sideways on a phone can be reached and
// scrolled with the keyboard, and a page waiting for a job (an import, a simulation) looks again by itself.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    window.siteScrollRegions && window.siteScrollRegions();
    window.siteRefreshAfter && window.siteRefreshAfter();
  });
})();
