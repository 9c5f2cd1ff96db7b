// Every page (templates/_head.html): the language menu switches on change (its button stays for pages without
// JavaScript), a toast can be closed, and a [data-print] button prints the page (statements). No inline script anywhere: the CSP refuses it.
(function () {
  "use strict";
  // A box that scrolls sideways (a wide table on a phone) is reachable with the keyboard, named by its heading.
  window.siteScrollRegions = function () {
    document.querySelectorAll("main *, #content *").forEach(function (box) {
      var overflow = getComputedStyle(box).overflowX;
      if ((overflow !== "auto" && overflow !== "scroll") || box.scrollWidth <= box.clientWidth + 1) return;
      if (box.hasAttribute("tabindex") || box.matches("a, button, input, select, textarea")) return;
      box.setAttribute("tabindex", "0");
      // A list or a table keeps its own role (its items need it); a plain box becomes a named region.
      if (!box.hasAttribute("role") && box.matches("div, section, fieldset")) box.setAttribute("role", "region");
      var heading = box.querySelector("caption, h2, h3, legend") || box.previousElementSibling;
      var name = heading && heading.textContent.trim();
      if (name && !box.hasAttribute("aria-label")) box.setAttribute("aria-label", name.slice(0, 80));
    });
  };
  // <meta name="refresh-after" content="5">: a page waiting for something (a payment's confirmation, a job) looks
  // again every few seconds and reloads only once what it shows has changed (data-state), never under the reader
  // for nothing. Without JavaScript a <noscript> refresh does the same.
  window.siteRefreshAfter = function () {
    var meta = document.querySelector('meta[name="refresh-after"]');
    if (!meta) return;
    var seconds = Math.max(2, parseInt(meta.content, 10) || 5);
    var state = meta.getAttribute("data-state") || "";
    var look = function () {
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : ""; })
        .then(function (html) {
          var found = /<meta name="refresh-after"[^>]*data-state="([^"]*)"/.exec(html);
          if (!found || found[1] !== state) { window.location.reload(); } else { window.setTimeout(look, seconds * 1000); }
        })
        .catch(function () { window.setTimeout(look, seconds * 1000); });
    };
    window.setTimeout(look, seconds * 1000);
  };
  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    window.siteScrollRegions();
    window.siteRefreshAfter();
    document.querySelectorAll("form.language").forEach(function (form) {
      var select = form.querySelector("select");
      if (!select) return;
      form.classList.add("auto");
      select.addEventListener("change", function () { form.submit(); });
    });
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    var close = document.documentElement.lang && document.documentElement.lang.indexOf("zh") === 0 ? "关闭" : "Close";
    document.querySelectorAll(".messages li").forEach(function (item) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "toast-close";
      button.setAttribute("aria-label", close);
      button.textContent = "×";
      button.addEventListener("click", function () { item.classList.add("closing"); });
      item.appendChild(button);
    });
  });
})();
