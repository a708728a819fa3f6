// "Copy" buttons: <button data-copy-target="ID"> copies the text of the element with that id
// and says so in place. A static file, as the pages' Content-Security-Policy allows no inline
// script; without JavaScript the button stays hidden and the text can be selected by hand.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.dataset.copyTarget);
    if (!target || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () { button.textContent = "Copied"; },
        function () { button.textContent = "Copy failed: select the text"; }
      );
    });
  });
})();
