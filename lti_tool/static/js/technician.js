/* Progressive enhancement only: every page works without this file. */
(function () {
  "use strict";
  // The page's words in its language: the template renders them into #technician-text ({name} placeholders).
  var textNode = document.getElementById("technician-text");
  var texts = textNode ? JSON.parse(textNode.textContent) : {};
  var t = function (key, values) {
    return (texts[key] || key).replace(/\{(\w+)\}/g, function (m, name) {
      return values && name in values ? String(values[name]) : m;
    });
  };
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  // After a refused form, move focus to the error summary so screen readers announce it.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  // Cross-training: "All steps observed" ticks every step of a competency. Each step stays its own box and is
  // recorded on its own; the box reads ticked only while every step is, half-ticked while some are.
  function allStepsBox(steps) { return steps.querySelector("input[data-all-steps]"); }
  function reflectSteps(steps) {
    var all = allStepsBox(steps);
    if (!all) { return; }
    var boxes = steps.querySelectorAll("input[name=checklist_steps]");
    var ticked = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
    all.checked = ticked === boxes.length;
    all.indeterminate = ticked > 0 && ticked < boxes.length;
  }
  each(document.querySelectorAll("input[data-all-steps]"), function (all) {
    var steps = document.getElementById(all.getAttribute("data-all-steps"));
    if (!steps) { return; }
    all.closest(".all-steps").hidden = false;
    all.addEventListener("change", function () {
      each(steps.querySelectorAll("input[name=checklist_steps]"), function (s) { s.checked = all.checked; });
      all.indeterminate = false;
    });
    steps.addEventListener("change", function (event) {
      if (event.target !== all) { reflectSteps(steps); }
    });
    reflectSteps(steps);
  });

  // Cross-training: show a competency's checklist steps only while it is ticked.
  each(document.querySelectorAll("input[data-steps]"), function (box) {
    var steps = document.getElementById(box.getAttribute("data-steps"));
    if (!steps) { return; }
    function sync() {
      steps.hidden = !box.checked;
      if (!box.checked) {
        each(steps.querySelectorAll("input[type=checkbox]"), function (s) { s.checked = false; });
        reflectSteps(steps);
      }
    }
    box.addEventListener("change", sync);
    sync();
  });

  // Cross-training: choosing the department lists its competencies only, their groups open; ticked ones stay.
  var department = document.getElementById("f-department");
  var filter = document.querySelector(".department-filter");
  var groupsBox = document.getElementById("f-competency-groups");
  if (department && filter && groupsBox) {
    var status = document.getElementById("f-filter-status");
    var toggle = document.getElementById("f-filter-toggle");
    var showAll = false;
    var applyFilter = function () {
      var code = department.value;
      var name = code ? department.options[department.selectedIndex].text : "";
      var matching = Array.prototype.filter.call(groupsBox.querySelectorAll("li.competency-choice"), function (li) {
        return (li.getAttribute("data-departments") || "").split(" ").indexOf(code) !== -1;
      }).length;
      var active = Boolean(code) && code !== "other" && matching > 0 && !showAll;
      each(groupsBox.querySelectorAll("details.group"), function (group) {
        var visible = 0;
        each(group.querySelectorAll("li.competency-choice"), function (li) {
          var tags = (li.getAttribute("data-departments") || "").split(" ");
          var ticked = li.querySelector("input[name=competency_ids]").checked;
          li.hidden = active && tags.indexOf(code) === -1 && !ticked;
          if (!li.hidden) { visible += 1; }
        });
        group.hidden = visible === 0;
        if (active && visible) { group.open = true; }
        var count = group.querySelector(".group-count");
        var all = count.getAttribute("data-total");
        count.textContent = "(" + (active && String(visible) !== all ? t("of", {visible: visible, all: all}) : all) + ")";
      });
      filter.hidden = !code || code === "other";
      toggle.hidden = matching === 0;
      if (matching === 0) {
        status.textContent = t("none_marked", {name: name});
      } else if (active) {
        status.textContent = t(matching === 1 ? "listing_one" : "listing_many", {n: matching, name: name});
        toggle.textContent = t("show_all");
      } else {
        status.textContent = t("listing_all");
        toggle.textContent = t("show_only", {name: name});
      }
      toggle.setAttribute("aria-expanded", String(!active));
    };
    department.addEventListener("change", function () { showAll = false; applyFilter(); });
    toggle.addEventListener("click", function () { showAll = !showAll; applyFilter(); });
    applyFilter();
  }

  // A date that follows another (a cross-training end date follows its start) until the person changes it.
  each(document.querySelectorAll("input[data-follows]"), function (follower) {
    var leader = document.getElementById(follower.getAttribute("data-follows"));
    if (!leader) { return; }
    var last = leader.value;
    var follow = function () {
      if (!follower.value || follower.value === last) { follower.value = leader.value; }
      last = leader.value;
    };
    leader.addEventListener("input", follow);
    leader.addEventListener("change", follow);
  });

  // Attachments: check each file before upload (type, size, count). A refused file is named and left out;
  // the files already chosen stay chosen, and photos taken one at a time add up.
  var files = document.getElementById("f-files");
  var list = document.getElementById("f-files-list");
  var refused = document.getElementById("f-files-refused");
  if (files && list && refused && typeof window.DataTransfer === "function") {
    var camera = document.getElementById("f-camera");
    var maxBytes = Number(files.getAttribute("data-max-bytes")) || Infinity;
    var maxCount = Number(files.getAttribute("data-max-count"));
    var maxTotal = Number(files.getAttribute("data-max-total")) || Infinity;
    var total = function () { return chosen.reduce(function (sum, c) { return sum + c.size; }, 0); };
    var mime = (files.getAttribute("data-mime") || "").split(" ");
    var chosen = [];
    var sizeText = function (n) {
      return n >= 1048576 ? (n / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(n / 1024)) + " KB";
    };
    var acceptable = function (f) {
      // HEIC photos often come without a type; their name says what they are, and the server checks content.
      return mime.indexOf(f.type) !== -1 || (!f.type && /\.(pdf|png|jpe?g|webp|heic)$/i.test(f.name));
    };
    var render = function () {
      var transfer = new DataTransfer();
      chosen.forEach(function (f) { transfer.items.add(f); });
      files.files = transfer.files;
      list.textContent = "";
      chosen.forEach(function (f, i) {
        var item = document.createElement("li");
        var label = document.createElement("span");
        label.textContent = f.name + " (" + sizeText(f.size) + ")";
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "button";
        remove.textContent = t("remove");
        var hidden = document.createElement("span");
        hidden.className = "visually-hidden";
        hidden.textContent = " " + f.name;
        remove.appendChild(hidden);
        remove.addEventListener("click", function () {
          chosen.splice(i, 1);
          render();
          refused.hidden = true;
          files.focus();
        });
        item.appendChild(label);
        item.appendChild(remove);
        list.appendChild(item);
      });
      list.hidden = chosen.length === 0;
    };
    var take = function (input) {
      var problems = [];
      each(input.files, function (f) {
        var same = chosen.some(function (c) {
          return c.name === f.name && c.size === f.size && c.lastModified === f.lastModified;
        });
        if (same) { return; }
        if (!acceptable(f)) {
          problems.push(t("bad_type", {file: f.name, types: files.getAttribute("data-types")}));
        } else if (f.size > maxBytes) {
          problems.push(t("too_big", {file: f.name, size: sizeText(f.size), max: files.getAttribute("data-size-text")}));
        } else if (chosen.length >= maxCount) {
          problems.push(t("too_many", {file: f.name, count: maxCount}));
        } else if (total() + f.size > maxTotal) {
          problems.push(t("too_much", {file: f.name, total: files.getAttribute("data-total-text")}));
        } else {
          chosen.push(f);
        }
      });
      if (input !== files) { input.value = ""; }
      render();
      if (problems.length && chosen.length) {
        problems.push(t(chosen.length === 1 ? "other_one" : "other_many", {n: chosen.length}));
      }
      refused.textContent = problems.join(" ");
      refused.hidden = problems.length === 0;
    };
    files.addEventListener("change", function () { take(files); });
    if (camera) { camera.addEventListener("change", function () { take(camera); }); }
  }
})();
