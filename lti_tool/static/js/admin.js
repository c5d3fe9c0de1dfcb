// Administration pages: focus the error summary, copy buttons for the tool's URLs, a busy state on slow forms.
(function () {
  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) summary.focus();

  var status = document.getElementById("copy-status");
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy"));
      var done = function () { if (status) status.textContent = "Copied: " + field.value; };
      field.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          if (document.execCommand("copy")) done();
        });
      } else if (document.execCommand("copy")) {
        done();
      }
    });
  });

  // Imports and bulk retries run while the page waits: say so, and keep a second click from sending twice.
  document.querySelectorAll("form[data-busy-label]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-busy") === "1") { event.preventDefault(); return; }
      form.setAttribute("data-busy", "1");
      var clicked = event.submitter;
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.setAttribute("aria-busy", "true");
        if (b === clicked || !clicked) b.setAttribute("aria-disabled", "true");
      });
      var live = form.querySelector(".admin-busy");
      if (live) live.textContent = form.getAttribute("data-busy-label");
    });
  });
})();
