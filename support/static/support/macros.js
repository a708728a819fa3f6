// The ticket page's macro picker: choosing a macro puts its text (placeholders already filled
// in for this ticket by the server) into the reply box. A static file: the admin's
// Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  function init() {
    var data = document.getElementById("support-macro-texts");
    var select = document.querySelector("select[data-support-macro]");
    var reply = document.getElementById("id_reply");
    if (!data || !select || !reply) return;
    var texts = JSON.parse(data.textContent);
    select.addEventListener("change", function () {
      var text = texts[select.value];
      if (!text) return;
      reply.value = reply.value.trim() ? reply.value.replace(/\s+$/, "") + "\n\n" + text : text;
      reply.dispatchEvent(new Event("input", { bubbles: true }));
      reply.focus();
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
