// The order's "paying" page (templates/shops/order_paying.html): send the browser on to the payment provider, open
// WeChat Pay inside WeChat (WeixinJSBridge), and go to the order page once the payment's outcome is known, asking our
// own order-state endpoint (which asks the provider itself when a notification is late).
(function () {
  var card = document.querySelector("[data-state-url]");
  if (!card) { return; }
  var forward = document.getElementById("paying-forward");
  if (forward) {
    // replace(): the back button then leads to the order page, not here (and on to the provider again).
    window.location.replace(forward.href);
    return;
  }
  var status = document.getElementById("paying-status");
  var waiting = card.getAttribute("data-code");
  var polls = 0;
  var timer = null;

  function poll() {
    polls += 1;
    fetch(card.getAttribute("data-state-url"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (state && state.code !== waiting) {
          window.location.assign(card.getAttribute("data-order-url"));
          return;
        }
        schedule();
      })
      .catch(schedule);
  }
  function schedule() {
    window.clearTimeout(timer);
    // Every 2 s for the first minute, then every 5 s, for at most about an hour (the order is closed before that).
    if (polls < 750) { timer = window.setTimeout(poll, polls < 30 ? 2000 : 5000); }
  }
  schedule();

  var button = document.getElementById("wechat-pay");
  var params = document.getElementById("jsapi-params");
  if (!button || !params) { return; }
  var request = JSON.parse(params.textContent);
  function pay() {
    button.disabled = true;
    window.WeixinJSBridge.invoke("getBrandWCPayRequest", request, function (result) {
      button.disabled = false;
      var outcome = (result && result.err_msg) || "";
      if (outcome === "get_brand_wcpay_request:ok") {
        // Not proof of payment (WeChat says so): the notification, or our query, decides.
        status.textContent = button.getAttribute("data-paid");
        window.clearTimeout(timer);
        poll();
      } else if (outcome === "get_brand_wcpay_request:cancel") {
        status.textContent = button.getAttribute("data-cancelled");
      } else {
        status.textContent = button.getAttribute("data-failed");
      }
    });
  }
  function ready() {
    button.addEventListener("click", pay);
    pay();
  }
  if (typeof window.WeixinJSBridge === "undefined") {
    document.addEventListener("WeixinJSBridgeReady", ready, false);
  } else {
    ready();
  }
})();
