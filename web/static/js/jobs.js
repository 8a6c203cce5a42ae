// A job's page: while the job is queued or running, ask the API for its progress every second and move
// the bar; once it has finished, load the page again to show the result.
(function () {
  "use strict";
  var root = document.getElementById("job");
  if (!root || !window.fetch) { return; }
  var url = root.getAttribute("data-url");
  var bar = root.querySelector("[data-job-progress]");
  var done = root.querySelector("[data-job-done]");
  var total = root.querySelector("[data-job-total]");

  function show(job) {
    if (bar && job.total) {
      bar.max = job.total;
      bar.value = job.done;
      bar.textContent = (job.percent || 0) + "%";
    }
    if (done) { done.textContent = String(job.done); }
    if (total) { total.textContent = job.total === null ? "…" : String(job.total); }
  }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (job) {
        if (!job) { return; }
        show(job);
        if (job.status === "done" || job.status === "failed") {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  var status = root.getAttribute("data-status");
  if (status === "queued" || status === "running") { window.setTimeout(poll, 1000); }
}());
