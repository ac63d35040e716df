// The guide panel: live check marks from the lab's frames; the panel is re-fetched when the step or its status changes.
(function () {
  "use strict";
  function panel() { return document.getElementById("guide"); }
  let loading = false;
  function reload() {
    const box = panel();
    if (!box || loading || !window.htmx) return;
    loading = true;
    htmx.ajax("GET", box.dataset.panel, { target: "#guide", swap: "outerHTML" }).finally(() => { loading = false; });
  }
  document.addEventListener("lab:frame", (evt) => {
    const guide = evt.detail && evt.detail.sections && evt.detail.sections.guide;
    const box = panel();
    if (!guide || !box) return;
    if (String(guide.step) !== box.dataset.step || guide.status !== box.dataset.status) { reload(); return; }
    guide.checks.forEach((c, i) => {
      const li = document.getElementById("check-" + i);
      if (!li) return;
      li.className = "check " + (c.ok ? "ok" : "pending");
      li.querySelector(".mark").textContent = c.ok ? "✓" : "…";
      li.querySelector(".detail").textContent = "— " + c.detail;
    });
  });
})();
