// Small behaviour for htmx under a strict CSP (no inline script anywhere).
(function () {
  "use strict";
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function newKey() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  // After a boosted navigation the <body> hx-headers may be stale (htmx #3379): read the meta.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRFToken"] = token;
    }
    // Every write carries an Idempotency-Key, kept on the element until an answer arrives: when
    // the network drops the answer, tapping again resends the same key, and the server answers
    // with the first result instead of doing it twice.
    if ((event.detail.verb || "get").toLowerCase() !== "get" && event.detail.elt) {
      var elt = event.detail.elt;
      if (!elt.dataset.idempotencyKey) { elt.dataset.idempotencyKey = newKey(); }
      event.detail.headers["Idempotency-Key"] = elt.dataset.idempotencyKey;
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status && event.detail.elt) {  // answered (any status): the next tap is new
      delete event.detail.elt.dataset.idempotencyKey;
    }
  });
  // On phones, tables become one card per row: each cell is labelled with its column's heading.
  function labelTables(root) {
    var tables = (root || document).querySelectorAll(".table-wrap table");
    Array.prototype.forEach.call(tables, function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      if (!heads.length) { return; }
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr) {
        Array.prototype.forEach.call(tr.children, function (cell, i) {
          if (heads[i] && !cell.hasAttribute("data-label")) { cell.setAttribute("data-label", heads[i]); }
        });
      });
      table.classList.add("stacked");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { labelTables(document); });
  document.addEventListener("htmx:afterSettle", function (event) { labelTables(event.target); });

  // A network failure must not look like nothing happened.
  document.addEventListener("htmx:sendError", function () {
    var flash = document.getElementById("flash");
    if (flash) {
      flash.innerHTML = "";
      var p = document.createElement("p");
      p.className = "flash flash-error";
      p.setAttribute("role", "alert");
      p.textContent = document.documentElement.lang === "en"
        ? "No connection. Please check your network and try again."
        : "网络连接失败，请检查网络后重试。";
      flash.appendChild(p);
    }
  });

  // One menu of the main bar open at a time; a tap elsewhere closes it.
  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (!menu.classList || !menu.classList.contains("menu") || !menu.open) { return; }
    document.querySelectorAll("details.menu[open]").forEach(function (other) {
      if (other !== menu) { other.open = false; }
    });
  }, true);
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.open = false; }
    });
  });
})();
