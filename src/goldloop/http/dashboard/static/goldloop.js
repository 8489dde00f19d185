// Goldloop dashboard behaviour. Progressive enhancement only: every page works without it.
// Loaded as a static file (the Content-Security-Policy forbids inline scripts).
"use strict";

// Trace page: selecting a run swaps the side panel in place instead of reloading the whole
// (possibly 5,000-run) tree. The panel HTML comes from the server, already escaped.
function enhanceTrace() {
  const tree = document.querySelector(".tree[data-panel-url]");
  const panel = document.getElementById("selected");
  if (!tree || !panel) return;
  tree.addEventListener("click", async (event) => {
    const link = event.target.closest("a.rname");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    const runId = link.dataset.run;
    if (!runId) return;
    event.preventDefault();
    const url = tree.dataset.panelUrl + "?run=" + encodeURIComponent(runId);
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers: { accept: "text/html" } });
    } catch (err) {
      window.location.href = link.href;
      return;
    }
    if (!response.ok || response.redirected) {  // e.g. the session ended: go the slow way
      window.location.href = link.href;
      return;
    }
    panel.innerHTML = await response.text();
    tree.querySelectorAll(".row.sel").forEach((row) => row.classList.remove("sel"));
    const row = link.closest(".row");
    if (row) row.classList.add("sel");
    history.replaceState(null, "", link.href);
    if (panel.getBoundingClientRect().top < 0) panel.scrollIntoView({ block: "start" });
  });
}

// Trace page: a collapsed subtree's rows are not in the page; fetch them when it is opened.
function lazySubtrees() {
  const tree = document.querySelector(".tree[data-subtree-url]");
  if (!tree) return;
  tree.addEventListener(
    "toggle",
    async (event) => {
      const node = event.target;
      if (!node.matches("details.lazy") || !node.open || node.dataset.loaded) return;
      node.dataset.loaded = "1";
      const kids = node.querySelector(":scope > .kids");
      const note = document.createElement("div");
      note.className = "loading";
      note.textContent = "loading…";
      kids.replaceChildren(note);
      const url = tree.dataset.subtreeUrl + "?run=" + encodeURIComponent(node.dataset.run);
      try {
        const response = await fetch(url, { credentials: "same-origin" });
        if (!response.ok || response.redirected) throw new Error(String(response.status));
        kids.innerHTML = await response.text();
      } catch (err) {
        note.textContent = "could not load these runs; select the run to open it";
        delete node.dataset.loaded;
      }
    },
    true,
  );
}

// Runs table: a header checkbox that selects every row of the page (hidden without scripts).
function selectAllRows() {
  const all = document.querySelector("table.runs input.select-all");
  if (!all) return;
  const boxes = () => document.querySelectorAll('table.runs input[name="run_id"]');
  all.hidden = false;
  all.addEventListener("change", () => boxes().forEach((box) => { box.checked = all.checked; }));
}

document.addEventListener("DOMContentLoaded", () => {
  enhanceTrace();
  lazySubtrees();
  selectAllRows();
});
