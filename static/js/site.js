// Every page (templates/_head.html): the language menu switches on change (its button stays for pages without
// JavaScript), a toast can be closed, and a [data-print] button prints the page (statements). No inline script anywhere: the CSP refuses it.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
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
