// The manager's pages, progressively enhanced: select-all for bulk sign-off, a live count of the selection,
// a busy state on forms that take a moment, and focus on the error summary. Everything works without it.
(function () {
  "use strict";

  // Error summary: move focus to it so keyboard and screen-reader users hear what went wrong.
  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) summary.focus();

  // Bulk selection in the review queue.
  var bulk = document.querySelector("form[data-bulk]");
  if (bulk) {
    var boxes = Array.prototype.slice.call(bulk.querySelectorAll('input[type="checkbox"][name="request"]'));
    var count = document.getElementById("selected-count");
    var head = bulk.querySelector("th.select-col");
    var all = null;
    if (head && boxes.length) {
      all = document.createElement("input");
      all.type = "checkbox";
      all.id = "select-all";
      var label = document.createElement("label");
      label.htmlFor = "select-all";
      label.className = "vh";
      label.textContent = "Select all requests shown";
      head.textContent = "";
      head.appendChild(all);
      head.appendChild(label);
      all.addEventListener("change", function () {
        boxes.forEach(function (box) { box.checked = all.checked; });
        update();
      });
    }
    function update() {
      var chosen = boxes.filter(function (box) { return box.checked; });
      if (all) {
        all.checked = chosen.length === boxes.length;
        all.indeterminate = chosen.length > 0 && chosen.length < boxes.length;
      }
      if (count) {
        var kinds = {};
        chosen.forEach(function (box) { kinds[box.closest("tr").getAttribute("data-competency")] = true; });
        var n = Object.keys(kinds).length;
        count.textContent = chosen.length ? chosen.length + " selected" +
          (n > 1 ? " (for " + n + " competencies: a bulk sign-off covers one)" : "") : "";
      }
    }
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    update();
  }

  // Busy state: one submission only, and say what is happening.
  Array.prototype.forEach.call(document.querySelectorAll("form[data-busy]"), function (form) {
    form.addEventListener("submit", function (event) {
      if (form.classList.contains("is-busy")) {
        event.preventDefault();
        return;
      }
      form.classList.add("is-busy");
      form.setAttribute("aria-busy", "true");
      Array.prototype.forEach.call(form.querySelectorAll('button[type="submit"]'), function (button) {
        button.setAttribute("aria-disabled", "true");
      });
      var status = form.querySelector(".busy-status");
      if (status) status.textContent = form.getAttribute("data-busy");
    });
  });
})();
