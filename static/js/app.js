// Drag and drop onto the upload form: files go to the file input, a .zip to the archive input.
(function () {
  function bind(zone) {
    if (zone.dataset.bound) return;
    zone.dataset.bound = "1";
    const form = zone.closest("form");
    const files = form.querySelector('input[name="files"]');
    const archive = form.querySelector('input[name="archive"]');
    const summary = zone.querySelector("[data-dropzone-summary]");
    const show = () => {
      const n = files.files.length, a = archive.files.length ? archive.files[0].name : "";
      summary.textContent = [n ? n + " file(s) selected" : "", a ? "archive: " + a : ""].filter(Boolean).join(" · ");
    };
    ["dragenter", "dragover"].forEach((e) => zone.addEventListener(e, (ev) => { ev.preventDefault(); zone.classList.add("over"); }));
    ["dragleave", "drop"].forEach((e) => zone.addEventListener(e, () => zone.classList.remove("over")));
    zone.addEventListener("drop", (ev) => {
      ev.preventDefault();
      const media = new DataTransfer(), zips = new DataTransfer();
      for (const f of ev.dataTransfer.files) (f.name.toLowerCase().endsWith(".zip") ? zips : media).items.add(f);
      if (media.files.length) files.files = media.files;
      if (zips.files.length) archive.files = zips.files;
      show();
    });
    files.addEventListener("change", show);
    archive.addEventListener("change", show);
    // Upload progress (bytes sent) before the job's own progress takes over.
    const bar = form.querySelector(".upload-progress");
    form.addEventListener("htmx:xhr:progress", (ev) => {
      if (!bar || !ev.detail.lengthComputable) return;
      bar.hidden = false;
      bar.value = Math.round((100 * ev.detail.loaded) / ev.detail.total);
    });
  }
  const scan = (root) => root.querySelectorAll("[data-dropzone]").forEach(bind);
  document.addEventListener("DOMContentLoaded", () => scan(document));
  document.addEventListener("htmx:load", (ev) => scan(ev.target));
})();

// Forms marked data-swap-conflict show a 409's message in their target (for example a bulk edit
// applied meanwhile in another tab) instead of failing silently (htmx swaps only 2xx and 422).
document.addEventListener("htmx:beforeSwap", (e) => {
  const config = e.detail.requestConfig;
  const elt = config && config.elt;  // the element that made the request
  if (e.detail.xhr.status === 409 && elt instanceof Element && elt.closest("[data-swap-conflict]")) {
    e.detail.shouldSwap = true;
    e.detail.isError = false;
  }
});
