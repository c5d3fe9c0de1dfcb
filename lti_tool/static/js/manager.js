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

  // Team matrix: each cell opens the technician's record at that competency. The page sends cells as text (a
  // link per cell would carry the session token 5,000 times); a cell becomes a link when it is pointed at,
  // touched or reached with the keyboard. One cell at a time is in the tab order (a roving tabindex), the arrow
  // keys, Home and End move between cells, and the line above the table names the cell's competency in full.
  var grid = document.querySelector("table[data-matrix]");
  if (grid) {
    var heads = Array.prototype.slice.call(grid.querySelectorAll("thead th"));
    var readout = document.getElementById("matrix-readout");
    var current = null;
    var labels = {};  // "ACH" -> "Achieved", from the key above the table
    Array.prototype.forEach.call(document.querySelectorAll("[data-status-abbr]"), function (el) {
      labels[el.getAttribute("data-status-abbr")] = el.getAttribute("data-status-label");
    });
    var describe = function (td) {  // "Tech 001, IV-GARB Garbing: Achieved (matches the filter)"
      var head = heads[td.cellIndex], row = td.parentElement.querySelector("th a");
      var code = td.textContent.replace("✱", "").trim();
      return row.textContent.trim() + ", " + head.getAttribute("title") + ": " + (labels[code] || code) +
        (td.classList.contains("hit") || td.classList.contains(grid.getAttribute("data-hit") || "hit")
          ? " (" + (grid.getAttribute("data-hit-label") || "✱") + ")" : "");
    };
    var isCell = function (td) { return td && td.tagName === "TD" && !td.classList.contains("held-col"); };
    var linkOf = function (td) {
      var a = td.querySelector("a");
      if (a) return a;
      var head = heads[td.cellIndex], row = td.parentElement.querySelector("th a");
      if (!head || !row) return null;
      var id = head.getAttribute("data-c");
      a = document.createElement("a");
      a.href = row.getAttribute("href") + "&competency=" + id + "#competency-" + id;
      a.setAttribute("tabindex", "-1");
      a.setAttribute("aria-label", describe(td));
      a.textContent = td.textContent;
      td.textContent = "";
      td.appendChild(a);
      return a;
    };
    var say = function (td) {
      // The line keeps its height when empty, so the table does not move under a pointer pressing a cell.
      if (readout) readout.textContent = describe(td);
    };
    var activate = function (td, focus) {
      var a = linkOf(td);
      if (!a) return;
      if (current && current !== a) current.setAttribute("tabindex", "-1");
      a.setAttribute("tabindex", "0");
      current = a;
      if (focus) a.focus();
    };
    var first = grid.querySelector("tbody td:not(.held-col)");
    if (first) activate(first, false);
    grid.addEventListener("mouseover", function (event) {
      var td = event.target.closest("td");
      if (isCell(td)) linkOf(td);
    });
    grid.addEventListener("touchstart", function (event) {
      var td = event.target.closest("td");
      if (isCell(td)) linkOf(td);
    }, {passive: true});
    grid.addEventListener("click", function (event) {
      // A tap or click that came before any pointer-over (a touch screen, a page restored with the pointer
      // already on it): the cell becomes its link and follows it.
      var td = event.target.closest("td");
      if (isCell(td) && event.target === td) {
        var a = linkOf(td);
        if (a) a.click();
      }
    });
    grid.addEventListener("focusin", function (event) {
      var td = event.target.closest("td");
      if (isCell(td)) { activate(td, false); say(td); }
    });
    grid.addEventListener("keydown", function (event) {
      var td = event.target.closest("td");
      if (!isCell(td)) return;
      var row = td.parentElement, index = td.cellIndex, next = null;
      if (event.key === "ArrowRight") next = row.cells[index + 1];
      else if (event.key === "ArrowLeft") next = row.cells[index - 1];
      else if (event.key === "ArrowDown") next = row.nextElementSibling && row.nextElementSibling.cells[index];
      else if (event.key === "ArrowUp") next = row.previousElementSibling && row.previousElementSibling.cells[index];
      else if (event.key === "Home") next = row.querySelector("td:not(.held-col)");
      else if (event.key === "End") next = row.cells[row.cells.length - 1];
      else return;
      event.preventDefault();
      if (isCell(next)) activate(next, true);
    });
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
