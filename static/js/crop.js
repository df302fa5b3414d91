// Box tool for the item page: draw, move and resize a box over an image or a video, in the
// ORIGINAL's pixels (the picture on screen is scaled), constrained by an aspect preset, kept in
// step with the form's x / y / w / h fields both ways, and the transform's output size shown live.
//
// Markup: a stage [data-boxer][data-width][data-height][data-boxer-form=FORM_ID] holding the
// <img>/<video> and a [data-boxer-overlay] with one [data-boxer-box]. The form may be swapped by
// htmx (errors come back as 422 partials), so it is always looked up by id, never cached.
//
// The arithmetic mirrors the services: box_constrain in apps/media/forms.py and _target /
// _check_factor in apps/media/services/transforms.py (Python rounds halves to even).
(function () {
  "use strict";
  if (window.__btCrop) return;
  window.__btCrop = true;

  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

  // Python's round(): halves go to the even neighbour.
  function pyRound(v) {
    const f = Math.floor(v), d = v - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return f % 2 === 0 ? f : f + 1;
  }

  function config() {
    const node = document.getElementById("bt-tool-config");
    return node ? JSON.parse(node.textContent) : { buckets: {}, max_pixels: 1e8 };
  }

  // The ratio an aspect preset asks for; a bucket set picks the bucket nearest the box's shape.
  function ratioFor(aspect, w, h) {
    if (!aspect) return null;
    const buckets = config().buckets[aspect];
    if (buckets) {
      let best = null, dist = Infinity;
      for (const [bw, bh] of buckets) {
        const r = bw / bh, d = Math.abs(Math.log((r * h) / w));
        if (d < dist) { dist = d; best = r; }
      }
      return best;
    }
    const [a, b] = aspect.split(":").map(Number);
    return a > 0 && b > 0 ? a / b : null;
  }

  // Shrink an integer box about its centre to the aspect (forms.box_constrain).
  function constrain(box, aspect) {
    const r = ratioFor(aspect, box.w, box.h);
    if (!r) return box;
    const { x, y, w, h } = box;
    if (Math.abs(w - h * r) <= 0.5 || Math.abs(h - w / r) <= 0.5) return box;
    if (w / h > r) {
      const nw = Math.max(1, pyRound(h * r));
      return { x: x + Math.floor((w - nw) / 2), y, w: nw, h };
    }
    const nh = Math.max(1, pyRound(w / r));
    return { x, y: y + Math.floor((h - nh) / 2), w, h: nh };
  }

  // The largest box of the aspect, centred (transforms._aspect_box with focus 0.5, 0.5).
  function aspectBox(W, H, aspect) {
    const r = ratioFor(aspect, W, H);
    if (!r) return null;
    const [w, h] = W / H <= r ? [W, W / r] : [H * r, H];
    return { x: (W - w) / 2, y: (H - h) / 2, w, h };
  }

  // Output size of the recipe the form describes: transforms._target and _check_factor.
  function outputSize(w, h, scale, size, upscale, maxPixels) {
    if (!scale) return { w: pyRound(w), h: pyRound(h) };
    const buckets = config().buckets[scale];
    let W, H, final = null;
    if (buckets) {
      const [bw, bh] = buckets.reduce((best, b) =>
        Math.abs(Math.log(b[0] / b[1] / (w / h))) < Math.abs(Math.log(best[0] / best[1] / (w / h))) ? b : best);
      const f = Math.max(bw / w, bh / h);
      W = Math.max(bw, pyRound(w * f)); H = Math.max(bh, pyRound(h * f)); final = [bw, bh];
    } else {
      if (!(size > 0)) return { error: scale === "megapixels" ? "Enter the megapixels." : "Enter the size in pixels." };
      const f = scale === "megapixels" ? Math.sqrt((size * 1e6) / (w * h))
        : scale === "long" ? size / Math.max(w, h) : size / Math.min(w, h);
      W = Math.max(1, pyRound(w * f)); H = Math.max(1, pyRound(h * f));
    }
    const factor = Math.max(W / w, H / h);
    if (factor > 4 + 1e-9) return { error: `This would upscale ${factor.toFixed(1)}×; at most 4× is allowed.` };
    if (W * H > maxPixels) return { error: `The output would be ${W} × ${H}, over the pixel limit.` };
    if (factor > 1 + 1e-9 && !upscale) {
      if (!buckets) return { w: pyRound(w), h: pyRound(h), note: "not enlarged: tick “Allow upscale” to enlarge" };
      return { error: `This needs a ${factor.toFixed(2)}× upscale; tick “Allow upscale”.` };
    }
    return final ? { w: final[0], h: final[1] } : { w: W, h: H };
  }

  class Boxer {
    constructor(stage) {
      this.stage = stage;
      this.W = Number(stage.dataset.width);
      this.H = Number(stage.dataset.height);
      this.overlay = stage.querySelector("[data-boxer-overlay]");
      this.el = stage.querySelector("[data-boxer-box]");
      this.box = null;
      this.drag = null;
      this.overlay.addEventListener("pointerdown", (e) => this.down(e));
      this.overlay.addEventListener("pointermove", (e) => this.move(e));
      this.overlay.addEventListener("pointerup", (e) => this.up(e));
      this.overlay.addEventListener("pointercancel", (e) => this.up(e));
      this.el.addEventListener("keydown", (e) => this.key(e));
      this.fromFields();
    }

    form() { return document.getElementById(this.stage.dataset.boxerForm); }
    aspect() { const f = this.form(); return (f && f.elements.aspect && f.elements.aspect.value) || ""; }

    // Pointer position in original pixels.
    point(e) {
      const r = this.overlay.getBoundingClientRect();
      return [clamp(((e.clientX - r.left) * this.W) / r.width, 0, this.W),
              clamp(((e.clientY - r.top) * this.H) / r.height, 0, this.H)];
    }

    down(e) {
      if (e.button !== 0) return;
      e.preventDefault();
      const [px, py] = this.point(e), b = this.box, handle = e.target.dataset && e.target.dataset.handle;
      if (handle && b) {
        // Resize: the opposite corner stays put.
        this.drag = { kind: "draw", ax: handle.includes("w") ? b.x + b.w : b.x, ay: handle.includes("n") ? b.y + b.h : b.y };
      } else if (b && px >= b.x && px <= b.x + b.w && py >= b.y && py <= b.y + b.h) {
        this.drag = { kind: "move", px, py, start: { ...b } };
      } else {
        this.drag = { kind: "draw", ax: px, ay: py, fresh: true };
      }
      this.overlay.setPointerCapture(e.pointerId);
      this.stage.classList.add("dragging");
    }

    move(e) {
      if (!this.drag) return;
      const [px, py] = this.point(e), d = this.drag;
      if (d.kind === "move") {
        const s = d.start;
        this.set({ x: clamp(Math.round(s.x + px - d.px), 0, this.W - s.w), y: clamp(Math.round(s.y + py - d.py), 0, this.H - s.h), w: s.w, h: s.h });
      } else {
        const b = this.dragged(d.ax, d.ay, px, py);
        if (b) this.set(b); else if (d.fresh) this.set(null);
      }
    }

    up(e) {
      if (!this.drag) return;
      this.move(e);
      this.drag = null;
      this.stage.classList.remove("dragging");
      if (this.overlay.hasPointerCapture(e.pointerId)) this.overlay.releasePointerCapture(e.pointerId);
    }

    // The box from anchor to pointer: grown to the aspect, kept inside the picture, whole pixels.
    dragged(ax, ay, px, py) {
      let w = Math.abs(px - ax), h = Math.abs(py - ay);
      if (w < 2 && h < 2) return null;
      const sx = px >= ax ? 1 : -1, sy = py >= ay ? 1 : -1;
      const aspect = this.aspect(), r = ratioFor(aspect, Math.max(w, 1), Math.max(h, 1));
      if (r) {
        if (w / Math.max(h, 1e-9) > r) h = w / r; else w = h * r;
        const maxW = sx > 0 ? this.W - ax : ax, maxH = sy > 0 ? this.H - ay : ay;
        if (h > maxH) { h = maxH; w = h * r; }
        if (w > maxW) { w = maxW; h = w / r; }
      }
      let x = sx > 0 ? ax : ax - w, y = sy > 0 ? ay : ay - h;
      x = clamp(Math.round(x), 0, this.W - 1); y = clamp(Math.round(y), 0, this.H - 1);
      w = clamp(Math.round(w), 1, this.W - x); h = clamp(Math.round(h), 1, this.H - y);
      return constrain({ x, y, w, h }, aspect);
    }

    key(e) {
      if (!this.box) return;
      const step = e.shiftKey ? 10 : 1;
      const delta = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
      if (!delta) return;
      e.preventDefault();
      const b = this.box;
      this.set({ ...b, x: clamp(b.x + delta[0], 0, this.W - b.w), y: clamp(b.y + delta[1], 0, this.H - b.h) });
    }

    // Aspect preset picked: fit the box to it, or start from the largest centred box.
    applyAspect() {
      const aspect = this.aspect();
      if (!aspect) return;
      if (this.box) { this.set(constrain(this.box, aspect)); return; }
      const a = aspectBox(this.W, this.H, aspect);
      const x = Math.round(a.x), y = Math.round(a.y);
      this.set(constrain({ x, y, w: clamp(Math.round(a.w), 1, this.W - x), h: clamp(Math.round(a.h), 1, this.H - y) }, aspect));
    }

    set(box, { write = true } = {}) {
      this.box = box;
      if (write) this.outside = false;
      if (box) {
        Object.assign(this.el.style, {
          left: (100 * box.x) / this.W + "%", top: (100 * box.y) / this.H + "%",
          width: (100 * box.w) / this.W + "%", height: (100 * box.h) / this.H + "%",
        });
      }
      this.el.hidden = !box;
      this.stage.classList.toggle("has-box", !!box);
      if (write) this.toFields();
      this.showSize();
    }

    toFields() {
      const f = this.form();
      if (!f) return;
      for (const k of ["x", "y", "w", "h"]) if (f.elements[k]) f.elements[k].value = this.box ? this.box[k] : "";
    }

    // Typed values (keyboard users, or a form re-rendered by the server) move the box.
    fromFields() {
      this.outside = false;
      const f = this.form();
      if (!f || !f.elements.x) return this.set(null, { write: false });
      const v = ["x", "y", "w", "h"].map((k) => f.elements[k].value.trim());
      if (v.some((s) => s === "")) return this.set(null, { write: false });
      const [x, y, w, h] = v.map(Number);
      if ([x, y, w, h].some((n) => !Number.isFinite(n)) || w < 1 || h < 1) return this.set(null, { write: false });
      // Drawn clipped to the picture; a box that reaches outside is flagged (the server refuses it).
      this.outside = x < 0 || y < 0 || x + w > this.W || y + h > this.H;
      const cx = clamp(x, 0, this.W - 1), cy = clamp(y, 0, this.H - 1);
      this.set({ x: cx, y: cy, w: clamp(w, 1, this.W - cx), h: clamp(h, 1, this.H - cy) }, { write: false });
    }

    showSize() {
      const f = this.form();
      const out = f && f.querySelector("[data-output-size]");
      if (!out) return;
      const b = this.box, quality = f.querySelector("[data-quality]");
      if (quality) quality.hidden = f.elements.format.value === "png";  // PNG is lossless
      out.classList.toggle("warn", !!this.outside);
      if (b && this.outside) {
        out.textContent = `The box reaches outside the ${this.W} × ${this.H} picture.`;
        return;
      }
      if (!f.elements.scale) {  // frame capture: the box is the frame size
        out.textContent = b ? `Frames will be ${b.w} × ${b.h} px (box at ${b.x}, ${b.y}).`
          : `Frames are ${this.W} × ${this.H} px; a box crops them.`;
        return;
      }
      let w = this.W, h = this.H;
      const aspect = this.aspect();
      if (b) { w = b.w; h = b.h; } else if (aspect) { const a = aspectBox(this.W, this.H, aspect); w = a.w; h = a.h; }
      const el = f.elements;
      const size = outputSize(w, h, el.scale.value, parseFloat(el.size.value), el.upscale.checked, config().max_pixels);
      const fmt = el.format.options[el.format.selectedIndex].text;
      out.classList.toggle("warn", !!size.error);
      if (size.error) { out.textContent = size.error; return; }
      const mp = (size.w * size.h) / 1e6;
      out.textContent = `Output: ${size.w} × ${size.h} px (${mp.toFixed(mp < 1 ? 2 : 1)} MP) · ${fmt}` + (size.note ? ` · ${size.note}` : "");
      out.dataset.width = size.w; out.dataset.height = size.h;
    }
  }

  function boxerFor(form) {
    if (!form || !form.id) return null;
    const stage = document.querySelector(`[data-boxer-form="${form.id}"]`);
    return stage && stage._boxer;
  }

  function init(root) {
    root.querySelectorAll("[data-boxer]").forEach((stage) => {
      if (!stage._boxer && stage.querySelector("[data-boxer-overlay]")) stage._boxer = new Boxer(stage);
    });
    // A swapped-in form: draw its values, restore the draw-on-video toggle, refresh the size.
    const forms = root.tagName === "FORM" ? [root] : root.querySelectorAll("form");
    forms.forEach((form) => {
      const boxer = boxerFor(form);
      if (!boxer) return;
      const toggle = form.querySelector("[data-boxer-draw]");
      if (toggle) toggle.checked = boxer.stage.classList.contains("drawing");
      boxer.fromFields();
    });
  }

  document.addEventListener("input", (e) => {
    const boxer = boxerFor(e.target.form);
    if (!boxer) return;
    if (["x", "y", "w", "h"].includes(e.target.name)) boxer.fromFields(); else boxer.showSize();
  });
  document.addEventListener("change", (e) => {
    const boxer = boxerFor(e.target.form);
    if (!boxer) return;
    if (e.target.name === "aspect") boxer.applyAspect();
    else if (e.target.matches("[data-boxer-draw]")) boxer.stage.classList.toggle("drawing", e.target.checked);
    else boxer.showSize();
  });
  document.addEventListener("click", (e) => {
    const clear = e.target.closest && e.target.closest("[data-boxer-clear]");
    const boxer = clear && boxerFor(clear.form);
    if (boxer) boxer.set(null);
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => init(document));
  else init(document);
  document.addEventListener("htmx:load", (e) => init(e.target));

  window.baggintagBox = { pyRound, ratioFor, constrain, outputSize };
})();
