// Live progress for running exports: polls each one's status JSON about once a second and
// updates its row in place (no page reload). Stops when the export finishes.
(function () {
  "use strict";

  function text(el, value) { if (el) { el.textContent = value; } }

  function render(row, data) {
    var status = row.querySelector("[data-role=status]");
    if (status) {
      status.className = "status status-" + data.status;
      text(status, data.status_label);
    }
    var bar = row.querySelector("[data-role=progress]");
    if (bar) {
      if (data.percent === null) { bar.removeAttribute("value"); } else { bar.value = data.percent; }
      text(bar, data.percent === null ? "" : data.percent + "%");
      bar.hidden = !data.active;
    }
    var rows = row.querySelector("[data-role=rows]");
    if (rows) {
      var done = data.rows_done.toLocaleString();
      text(rows, data.active
        ? (data.rows_total === null ? done + " rows" : done + " of " + data.rows_total.toLocaleString() + " rows")
        : (data.status === "completed" ? data.rows_total.toLocaleString() + " rows" : ""));
    }
    var error = row.querySelector("[data-role=error]");
    if (error) { text(error, data.error || ""); error.hidden = !data.error; }
    var actions = row.querySelector("[data-role=actions]");
    if (actions && data.file_url && !actions.querySelector("a")) {
      var link = document.createElement("a");
      link.className = "button";
      link.href = data.file_url;
      link.setAttribute("download", "");
      link.textContent = "Download ZIP";
      actions.appendChild(link);
      // The size and the expiry date appear with the link, as after a reload.
      var info = document.createElement("small");
      info.className = "muted";
      info.setAttribute("data-role", "file-info");
      info.textContent = data.size_label + " · until " + data.expires_label;
      actions.appendChild(document.createElement("br"));
      actions.appendChild(info);
    }
  }

  function poll(row) {
    fetch(row.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 404) { return null; }
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (data) {
        if (data === null) { return; }
        render(row, data);
        if (data.active) { window.setTimeout(function () { poll(row); }, 1000); }
      })
      .catch(function () { window.setTimeout(function () { poll(row); }, 3000); });
  }

  document.querySelectorAll("tr[data-export-id]").forEach(function (row) {
    if (row.dataset.active === "1") { window.setTimeout(function () { poll(row); }, 1000); }
  });
})();
