// The library's selection: tick thumbnails (Shift-click ticks a range), or select every item
// matching the current query and filters, then act on them (edit tags, transform, delete).
// The selection lives in this page; a new search (the gallery swapped) starts a new one.
(function () {
  const form = document.querySelector("[data-selection]");
  if (!form) return;
  const chosen = new Set();
  let last = null;  // the last box ticked by hand, for Shift ranges
  let everything = false;  // "all matching" was used (and nothing unticked since)
  const idsField = form.querySelector("[data-selection-ids]");
  const label = form.querySelector("[data-selection-count]");
  const hint = label.textContent;
  const boxes = () => Array.from(document.querySelectorAll("#gallery [data-pick]"));

  function render() {
    boxes().forEach((box) => {
      box.checked = chosen.has(box.value);
      box.closest(".tile").classList.toggle("selected", box.checked);
    });
    idsField.value = Array.from(chosen).join(" ");
    const n = chosen.size;
    label.textContent = n ? `${n} selected${everything ? " (all matching)" : ""}` : hint;
    form.querySelectorAll("[data-needs-selection], [data-select-none]").forEach((b) => { b.disabled = n === 0; });
  }

  document.addEventListener("click", (ev) => {
    const box = ev.target instanceof Element && ev.target.closest("#gallery [data-pick]");
    if (!box) return;
    const all = boxes();
    if (ev.shiftKey && last && all.includes(last)) {
      const [a, b] = [all.indexOf(last), all.indexOf(box)].sort((x, y) => x - y);
      all.slice(a, b + 1).forEach((other) => (box.checked ? chosen.add(other.value) : chosen.delete(other.value)));
    } else if (box.checked) {
      chosen.add(box.value);
    } else {
      chosen.delete(box.value);
    }
    if (!box.checked) everything = false;
    last = box;
    render();
  });

  // Pages whose selection has no "all matching" (a dataset's members) leave the button out.
  form.querySelector("[data-select-all]")?.addEventListener("click", async () => {
    const url = `${form.dataset.idsUrl}${window.location.search}`;
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      label.textContent = `Could not select: ${error.message || "fix the query or filters first."}`;
      return;
    }
    const body = await response.json();
    body.ids.forEach((id) => chosen.add(String(id)));
    everything = true;
    render();
    if (body.truncated) label.textContent += ` — the first ${body.ids.length} only`;
  });

  form.querySelector("[data-select-none]").addEventListener("click", () => {
    chosen.clear();
    everything = false;
    render();
  });

  // A new result list (a search or filter change) starts a new selection; more pages keep it.
  document.addEventListener("htmx:afterSwap", (ev) => {
    if (ev.detail.target && ev.detail.target.id === "gallery") {
      chosen.clear();
      everything = false;
      last = null;
    }
    render();
  });
})();

// The format filter's summary names the ticked formats.
document.addEventListener("change", (ev) => {
  const multi = ev.target instanceof Element && ev.target.closest("[data-multi]");
  if (!multi) return;
  const ticked = Array.from(multi.querySelectorAll("input:checked")).map((i) => i.value);
  multi.querySelector("[data-multi-summary]").textContent = ticked.length ? ticked.join(", ") : "any";
});
