// The open-shop page (templates/members/my_shop.html): the shop address is checked as the member types. A pause in
// typing asks /dashboard/shop/address/?address=… (members.views.shop.my_shop_address_check) and its answer is
// written beside the field (#address-check, aria-live="polite"), with a button that puts a suggested free address in
// the field. Without script the form still works: the server checks the address when it is posted.
(function () {
  var input = document.querySelector("input[data-check-url]");
  var status = document.getElementById("address-check");
  if (!input || !status || !window.fetch) { return; }
  var form = input.form;
  var nameInput = form ? form.querySelector("input[name$='name']") : null;
  var timer = null;
  var asked = 0; // the number of the latest question: an older answer arriving late is dropped

  function show(answer) {
    status.textContent = "";
    status.classList.remove("is-available", "is-refused");
    if (!answer || !answer.message) { return; }
    status.classList.add(answer.available ? "is-available" : "is-refused");
    var text = document.createElement("span");
    text.textContent = answer.message;
    status.appendChild(text);
    if (answer.suggestion && !answer.available) {
      var use = document.createElement("button");
      use.type = "button";
      use.className = "secondary address-use";
      use.textContent = (status.dataset.useLabel || "Use") + ": " + answer.suggestion;
      use.addEventListener("click", function () {
        input.value = answer.suggestion;
        input.focus();
        check();
      });
      status.appendChild(document.createTextNode(" "));
      status.appendChild(use);
    }
  }

  function check() {
    var value = input.value.trim();
    var number = ++asked;
    if (!value) { show(null); return; }
    var url = input.dataset.checkUrl + "?address=" + encodeURIComponent(value);
    if (nameInput && nameInput.value) { url += "&name=" + encodeURIComponent(nameInput.value); }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (answer) { if (number === asked) { show(answer); } })
      .catch(function () { if (number === asked) { show(null); } });
  }

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    status.classList.remove("is-available", "is-refused");
    status.textContent = status.dataset.checking || "";
    timer = window.setTimeout(check, 350);
  });
  if (input.hasAttribute("data-check-now") && input.value.trim()) { check(); } // the suggested address: say it is free
})();
