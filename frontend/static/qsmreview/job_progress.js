// A job shown on a page (`[data-testid=job-progress][data-job=<id>]`, with a <progress> and a
// `.stage`): poll the jobs API, show its progress and stage, reload the page when it ends.
// Used by the statistics dashboard and the exports page.
(() => {
  const progress = document.querySelector("[data-testid=job-progress][data-job]");
  if (!progress) return;
  const poll = () => fetch(`/api/v1/jobs/${progress.dataset.job}/`, { headers: { Accept: "application/json" } })
    .then((r) => r.json())
    .then((job) => {
      progress.querySelector("progress").value = job.progress;
      progress.querySelector(".stage").textContent = job.stage || job.status;
      if (["succeeded", "failed", "cancelled"].includes(job.status)) window.location.reload();
      else setTimeout(poll, 1500);
    })
    .catch(() => setTimeout(poll, 5000));
  setTimeout(poll, 1000);
})();
