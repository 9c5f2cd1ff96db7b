// The share page (templates/members/share.html): copy buttons (data-copy; the label turns to data-done), and the
// phone's own share sheet where the browser has one (data-native-share stays hidden otherwise).
document.querySelectorAll("[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    var text = button.dataset.copy;
    var done = function () { button.textContent = button.dataset.done || "✓"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text) && done(); });
    } else if (fallbackCopy(text)) {
      done();
    }
  });
});

function fallbackCopy(text) {
  // Plain http or an old in-app browser: copy through a selected, off-screen text area.
  var area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.appendChild(area);
  area.select();
  var copied = false;
  try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
  document.body.removeChild(area);
  return copied;
}

document.querySelectorAll("[data-native-share]").forEach(function (button) {
  if (!navigator.share) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.share({ title: document.title, url: button.dataset.nativeShare }).catch(function () {});
  });
});
