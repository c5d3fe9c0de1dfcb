// Transcript export page: poll the job's progress JSON until it finishes, then show the download link.
(function () {
  var box = document.getElementById("export-progress");
  if (!box) return;
  var url = box.getAttribute("data-progress-url");
  var bar = document.getElementById("export-bar");
  var status = document.getElementById("export-status");
  var download = document.getElementById("export-download");
  var delay = 1000;

  function show(data) {
    bar.value = data.percent;
    bar.textContent = data.percent + "%";
    if (data.status === "done") {
      status.textContent = "Finished: " + data.total + " transcripts.";
      download.hidden = false;
      return true;
    }
    if (data.status === "failed") { status.textContent = data.error || "The export failed."; return true; }
    if (data.status === "resuming") {
      status.textContent = "The export stopped after " + data.done + " of " + data.total +
        " transcripts; it starts again shortly.";
      return false;
    }
    status.textContent = data.done + " of " + data.total + " transcripts done.";
    return false;
  }

  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) { if (!show(data)) setTimeout(poll, delay); })
      .catch(function () {
        delay = Math.min(delay * 2, 15000);
        status.textContent = "Checking progress again shortly…";
        setTimeout(poll, delay);
      });
  }
  if (download.hidden) setTimeout(poll, delay);
})();
