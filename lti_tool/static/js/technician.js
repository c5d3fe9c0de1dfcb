/* Progressive enhancement only: every page works without this file. */
(function () {
  "use strict";
  // After a refused form, move focus to the error summary so screen readers announce it.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  // Cross-training: show a competency's checklist steps only while it is ticked.
  var boxes = document.querySelectorAll("input[data-steps]");
  Array.prototype.forEach.call(boxes, function (box) {
    var steps = document.getElementById(box.getAttribute("data-steps"));
    if (!steps) { return; }
    function sync() {
      steps.hidden = !box.checked;
      if (!box.checked) {
        Array.prototype.forEach.call(steps.querySelectorAll("input[type=checkbox]"), function (s) { s.checked = false; });
      }
    }
    box.addEventListener("change", sync);
    sync();
  });
})();
