// The payout account form (templates/members/payout_account.html): show only the fields of the chosen method.
(function () {
  var fields = {bank: ["bank_name", "bank_branch", "account_number"], alipay: ["alipay_account"], wechat: ["wechat_id", "wechat_bind"]};
  var select = document.getElementById("id_method");
  function show() {
    var all = [].concat(fields.bank, fields.alipay, fields.wechat);
    all.forEach(function (name) {
      var box = document.querySelector('[data-field="' + name + '"]');
      if (box) { box.hidden = (fields[select.value] || []).indexOf(name) < 0; }
    });
  }
  if (select) { select.addEventListener("change", show); show(); }
})();
