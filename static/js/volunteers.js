// Volunteer registration: show the party-member and five-elders fields only when that type
// is ticked. Without this script every field stays visible and the server validates them.
(function () {
  "use strict";
  function update(form) {
    var sections = form.querySelectorAll("[data-reveal-for]");
    for (var i = 0; i < sections.length; i++) {
      var type = sections[i].getAttribute("data-reveal-for");
      var box = form.querySelector('input[name="types"][value="' + type + '"]');
      sections[i].hidden = !(box && box.checked);
    }
  }
  function init() {
    var forms = document.querySelectorAll("form.volunteer-form");
    for (var i = 0; i < forms.length; i++) {
      (function (form) {
        form.addEventListener("change", function (event) {
          if (event.target.name === "types") {
            update(form);
          }
        });
        update(form);
      })(forms[i]);
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
