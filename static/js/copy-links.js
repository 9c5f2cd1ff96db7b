// Copy buttons on the links page (templates/members/links.html): a button with data-copy copies its value.
document.querySelectorAll("[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    if (navigator.clipboard) {
      navigator.clipboard.writeText(button.dataset.copy).then(function () { button.textContent = "✓"; });
    }
  });
});
