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
  // the header box follows the rows: checked when all are, mixed when some are
  document.querySelector("table.runs tbody").addEventListener("change", () => {
    const checked = [...boxes()].filter((box) => box.checked).length;
    all.checked = checked > 0 && checked === boxes().length;
    all.indeterminate = checked > 0 && checked < boxes().length;
  });
}

// Review page: the keyboard. Number keys pick a choice of the highlighted key (then the next
// unanswered key is highlighted), Enter submits and opens the next item, s skips, Ctrl+Enter
// submits from a text box. Without scripts the page is a plain form with the same buttons.
function reviewKeys() {
  const form = document.getElementById("review-form");
  if (!form) return;
  const keys = Array.from(form.querySelectorAll("fieldset.rv-key"));
  let active = 0;
  const answered = (fs) => Array.from(fs.querySelectorAll("input")).some(
    (input) => (input.type === "radio" ? input.checked : input.value.trim() !== ""));
  const highlight = (index) => {
    active = Math.max(0, Math.min(index, keys.length - 1));
    keys.forEach((fs, i) => fs.classList.toggle("rv-active", i === active));
    const field = keys[active] && keys[active].querySelector("input:not([type=radio])");
    if (field) field.focus();
  };
  const nextUnanswered = () => {
    const index = keys.findIndex((fs) => !answered(fs));
    return index === -1 ? keys.length - 1 : index;
  };
  keys.forEach((fs, i) => fs.addEventListener("focusin", () => { if (active !== i) highlight(i); }));
  keys.forEach((fs, i) => fs.addEventListener("click", () => { if (active !== i) highlight(i); }));
  if (keys.length) highlight(nextUnanswered());
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.metaKey || event.isComposing) return;
    const target = event.target;
    const typing = target instanceof HTMLTextAreaElement ||
      (target instanceof HTMLInputElement && target.type !== "radio" && target.type !== "checkbox");
    if (event.key === "Enter" && (event.ctrlKey || !(target instanceof HTMLTextAreaElement))) {
      if (target instanceof HTMLButtonElement || target instanceof HTMLAnchorElement) return;
      event.preventDefault();
      form.requestSubmit(document.getElementById("rv-submit"));
      return;
    }
    if (typing || event.ctrlKey) return;
    if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      document.getElementById("skip-form").requestSubmit();
      return;
    }
    if (/^[1-9]$/.test(event.key) && keys.length) {
      const choice = keys[active].querySelector('input[data-hotkey="' + event.key + '"]');
      if (!choice) return;
      event.preventDefault();
      choice.checked = true;
      highlight(nextUnanswered());
    }
  });
}

// Trace tree: one tab stop for the whole tree (the current row's link), and the arrow keys to
// move between the rows shown (Up/Down, Home/End), open a row's children (Right; again: go to
// the first child) and close them or go to the parent row (Left). Enter selects the row as a
// click does. Without scripts every row is a link and a disclosure in the tab order.
function treeKeys() {
  const tree = document.querySelector(".tree[data-panel-url]");
  if (!tree) return;
  const shown = (link) => {  // not inside a closed row's children (nor lazily unloaded)
    for (let node = link.closest("details"); node; node = node.parentElement.closest("details")) {
      if (!node.open && !node.querySelector(":scope > summary").contains(link)) return false;
    }
    return true;
  };
  const visibleLinks = () => Array.from(tree.querySelectorAll(".row a.rname")).filter(shown);
  const calm = (root) => {  // links and disclosures out of the tab order, but one
    root.querySelectorAll("a.rname, summary").forEach((el) => {
      if (!el.hasAttribute("tabindex")) el.setAttribute("tabindex", "-1");
    });
  };
  const current = () => tree.querySelector('a.rname[tabindex="0"]');
  const moveTo = (link) => {
    if (!link) return;
    const before = current();
    if (before && before !== link) before.setAttribute("tabindex", "-1");
    link.setAttribute("tabindex", "0");
    link.focus();
  };
  calm(tree);
  const start = tree.querySelector(".row.sel a.rname") || visibleLinks()[0];
  if (start) start.setAttribute("tabindex", "0");
  new MutationObserver((changes) => changes.forEach((change) => change.addedNodes.forEach(
    (node) => { if (node instanceof Element) calm(node); }))).observe(tree, { childList: true, subtree: true });
  tree.addEventListener("focusin", (event) => {  // a click or the panel put focus elsewhere
    const link = event.target.closest("a.rname");
    if (link && link !== current()) moveTo(link);
  });
  tree.addEventListener("keydown", (event) => {
    const link = event.target.closest("a.rname");
    if (!link || event.altKey || event.ctrlKey || event.metaKey) return;
    const row = link.closest(".row");
    const node = row && row.tagName === "SUMMARY" ? row.parentElement : null;
    const links = visibleLinks();
    const index = links.indexOf(link);
    let handled = true;
    if (event.key === "ArrowDown") moveTo(links[index + 1]);
    else if (event.key === "ArrowUp") moveTo(links[index - 1]);
    else if (event.key === "Home") moveTo(links[0]);
    else if (event.key === "End") moveTo(links[links.length - 1]);
    else if (event.key === "ArrowRight" && node) {
      if (!node.open) node.open = true;
      else moveTo(node.querySelector(":scope > .kids a.rname"));
    } else if (event.key === "ArrowLeft") {
      if (node && node.open) node.open = false;
      else {
        const parent = row.parentElement.closest("details.node");
        moveTo(parent && parent.querySelector(":scope > summary a.rname"));
      }
    } else handled = false;
    if (handled) event.preventDefault();
  });
}

// Rule form: the filter preview follows the typing (fetched 300 ms after the last change; a
// newer change cancels an older request). The "Preview the filter" button stays for pages
// without scripts. The preview HTML comes from the server, escaped there like the whole page.
function liveRulePreview() {
  document.querySelectorAll("form.rule-form[data-preview-url]").forEach((form) => {
    const filter = form.querySelector("input[name=filter]");
    const slot = form.nextElementSibling;
    if (!filter || !slot || !slot.classList.contains("rule-preview-slot")) return;
    const project = form.querySelector("select[name=project_id]");
    const rootOnly = form.querySelector("input[name=root_only]");
    let timer = null;
    let pending = null;
    const refresh = async () => {
      if (pending) pending.abort();
      const mine = new AbortController();
      pending = mine;
      const params = new URLSearchParams({
        project_id: project ? project.value : (form.dataset.project || ""),
        filter: filter.value,
      });
      if (rootOnly && rootOnly.checked) params.set("root_only", "1");
      try {
        const response = await fetch(form.dataset.previewUrl + "?" + params, {
          credentials: "same-origin",
          headers: { accept: "text/html" },
          signal: mine.signal,
        });
        if (!response.ok || response.redirected) return;  // e.g. the session ended: keep it
        const html = await response.text();
        if (pending === mine) slot.innerHTML = html;
      } catch (err) {
        // aborted by a newer change, or offline: the button still works
      }
    };
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    };
    filter.addEventListener("input", later);
    if (project) project.addEventListener("change", later);
    if (rootOnly) rootOnly.addEventListener("change", later);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  enhanceTrace();
  treeKeys();
  lazySubtrees();
  selectAllRows();
  reviewKeys();
  liveRulePreview();
});
