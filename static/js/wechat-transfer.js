/* The member's payout page: "Confirm receipt in WeChat" hands WeChat the transfer bill's package
 * (WeixinJSBridge requestMerchantTransfer, inside WeChat's browser), then asks the server how the transfer stands.
 * Outside WeChat there is no bridge: the page says to open it in WeChat. */
(function () {
  "use strict";

  function outside(button) {
    var note = button.closest(".wechat-transfer").querySelector(".js-wechat-transfer-outside");
    if (note) {
      note.hidden = false;
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".js-wechat-transfer");
    if (!button) {
      return;
    }
    var bridge = window.WeixinJSBridge;
    if (!bridge || typeof bridge.invoke !== "function") {
      outside(button);
      return;
    }
    button.disabled = true;
    bridge.invoke(
      "requestMerchantTransfer",
      { mchId: button.dataset.mchId, appId: button.dataset.appId, package: button.dataset.package },
      function (result) {
        button.disabled = false;
        // "ok" means the confirmation page was shown and left, not that the money arrived: ask the server.
        if (result && result.err_msg === "requestMerchantTransfer:ok") {
          button.closest("form").submit();
        }
      }
    );
  });
})();
