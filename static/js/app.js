// Small behaviour for htmx under a strict CSP (no inline script anywhere).
(function () {
  "use strict";
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  // After a boosted navigation the <body> hx-headers may be stale (htmx #3379): read the meta.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRFToken"] = token;
    }
  });
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
})();
