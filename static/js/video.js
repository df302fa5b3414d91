// Video page: the timeline of captured frames seeks the player, the capture form follows the
// player's time, batch fields show for the chosen mode, and a finished capture job refreshes
// the timeline. Without JavaScript the same form works with a typed time.
(function () {
  "use strict";
  if (window.__btVideo) return;
  window.__btVideo = true;

  const player = () => document.querySelector("[data-player]");
  // The player's time in whole milliseconds, never rounded up past the last frame.
  const seconds = (video) => (Math.floor(video.currentTime * 1000) / 1000).toFixed(3);

  function seek(seconds) {
    const video = player();
    if (!video || !Number.isFinite(seconds)) return;
    video.pause();
    video.currentTime = Math.max(0, seconds);
  }

  // The capture time field mirrors the player unless someone is typing in it.
  function syncTime() {
    const video = player();
    if (!video) return;
    const field = document.querySelector('#frames-form input[name="timestamp"]');
    if (field && document.activeElement !== field) field.value = seconds(video);
    const track = document.querySelector("[data-timeline]");
    const head = track && track.querySelector("[data-playhead]");
    const duration = Number(track && track.dataset.duration) || video.duration;
    if (head && duration > 0) head.style.left = Math.min(100, (100 * video.currentTime) / duration) + "%";
  }

  function showModeFields(form) {
    const mode = form.elements.mode && form.elements.mode.value;
    form.querySelectorAll("[data-mode-field]").forEach((el) => { el.hidden = el.dataset.modeField !== mode; });
  }

  function init(root) {
    const video = player();
    if (video && !video.dataset.bound) {
      video.dataset.bound = "1";
      ["timeupdate", "seeked", "loadedmetadata"].forEach((ev) => video.addEventListener(ev, syncTime));
    }
    const form = root.id === "frames-form" ? root : root.querySelector && root.querySelector("#frames-form");
    if (form) showModeFields(form);
    syncTime();  // also places the playhead on a reloaded timeline
    // A capture job that just finished: reload the timeline so its frames appear.
    const job = root.matches && root.matches("#frames-tool section.job") ? root
      : root.querySelector && root.querySelector("#frames-tool section.job");
    if (job && job.dataset.status === "succeeded" && window.htmx) {
      window.htmx.ajax("GET", window.location.pathname, { target: "#frame-strip", select: "#frame-strip", swap: "outerHTML" });
    }
  }

  document.addEventListener("click", (e) => {
    const thumb = e.target.closest && e.target.closest("[data-seek]");
    if (thumb && !(e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0)) {
      e.preventDefault();
      seek(Number(thumb.dataset.seek));
      return;
    }
    const track = e.target.closest && e.target.closest("[data-timeline]");
    if (track) {
      const r = track.getBoundingClientRect(), duration = Number(track.dataset.duration);
      if (duration > 0) seek((duration * (e.clientX - r.left)) / r.width);
    }
  });
  document.addEventListener("change", (e) => {
    if (e.target.name === "mode" && e.target.form && e.target.form.id === "frames-form") showModeFields(e.target.form);
    if (e.target.name === "timestamp" && e.target.form && e.target.form.id === "frames-form") seek(Number(e.target.value));
  });
  // "Capture this frame" sends the player's exact time (the field shows it rounded to 1 ms).
  document.addEventListener("submit", (e) => {
    const video = player(), form = e.target;
    if (form.id !== "frames-form" || !video || video.readyState < 1) return;
    const field = form.elements.timestamp;
    if (field && document.activeElement !== field) field.value = seconds(video);
  }, true);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => init(document));
  else init(document);
  document.addEventListener("htmx:load", (e) => init(e.target));
})();
