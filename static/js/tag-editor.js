// Tag editor on the item page: autocomplete, curated chips from the keyboard, promote shortcuts.
// The server renders everything (htmx swaps #tag-editor whole); this file only moves focus,
// drives the suggestion list and turns keys into clicks on the buttons the server rendered.
(function () {
  "use strict";

  // Where focus goes once the editor has been swapped: {kind: "input"} | {kind: "curated", index}
  // | {kind: "set", set, name}. The input and the suggestion list are hx-preserve'd: the same
  // elements live on across swaps, so what is typed while an add is in flight is kept.
  let pendingFocus = null;
  let submitted = "";  // the text of the add in flight, put back if the server refuses it
  let restore = "";

  const $ = (id) => document.getElementById(id);
  const input = () => $("tag-input");
  const listbox = () => $("tag-suggestions");
  const options = () => Array.from(listbox()?.querySelectorAll('[role="option"]') || []);
  const curatedChips = () => Array.from(document.querySelectorAll("#curated-chips [data-chip]"));
  const activeIndex = () => options().findIndex((o) => o.getAttribute("aria-selected") === "true");
  const isOpen = () => !!listbox() && !listbox().hidden && options().length > 0;
  const typing = (el) => el.matches("input, textarea, select, [contenteditable]");
  const plainKey = (e) => !e.ctrlKey && !e.metaKey && !e.altKey;

  function setActive(index) {
    const opts = options();
    opts.forEach((o, j) => o.setAttribute("aria-selected", j === index ? "true" : "false"));
    if (index >= 0 && opts[index]) {
      input().setAttribute("aria-activedescendant", opts[index].id);
      opts[index].scrollIntoView({ block: "nearest" });
    } else {
      input().removeAttribute("aria-activedescendant");
    }
  }

  function openIfAny() {
    const box = listbox(), field = input();
    if (!box || !field) return;
    const show = options().length > 0 && field.value.trim() !== "" && field.dataset.closed !== field.value
      && document.activeElement === field;
    box.hidden = !show;
    field.setAttribute("aria-expanded", show ? "true" : "false");
    setActive(-1);
  }

  function close() {
    const box = listbox(), field = input();
    if (!box || !field) return;
    box.hidden = true;
    field.setAttribute("aria-expanded", "false");
    field.removeAttribute("aria-activedescendant");
  }

  // One add at a time: an Enter while an add is in flight waits for its swap, so the next add
  // carries the fresh row version and nothing typed meanwhile is dropped.
  let inFlight = false;
  let queued = false;

  function submitAdd() {
    const form = $("tag-add-form"), field = input();
    if (!form || !field.value.trim()) return;
    close();
    pendingFocus = { kind: "input" };
    if (inFlight) { queued = true; return; }
    inFlight = true;
    form.requestSubmit();
  }

  document.addEventListener("htmx:afterRequest", (e) => {
    if (e.detail.elt.id === "tag-add-form") inFlight = false;
  });
  document.addEventListener("htmx:afterSettle", () => {
    if (queued && !inFlight) { queued = false; submitAdd(); }
  });

  // Once htmx has read the form, empty the input at once: typing on goes into the next tag.
  document.addEventListener("htmx:configRequest", (e) => {
    if (e.detail.elt.id !== "tag-add-form") return;
    const field = input();
    submitted = field.value;
    field.value = "";
    close();
  });
  document.addEventListener("htmx:beforeSwap", (e) => {
    if (e.detail.requestConfig?.elt?.id === "tag-add-form") {
      restore = e.detail.xhr.status === 200 ? "" : submitted;
    }
  });

  function accept(option) {
    if (!option) return;
    // Replace only the tag being typed: "a, b, ca" + cat → "a, b, cat".
    const field = input(), parts = field.value.split(",");
    parts[parts.length - 1] = (parts.length > 1 ? " " : "") + option.dataset.name;
    field.value = parts.join(",");
    submitAdd();
  }

  function focusChip(chips, index) {
    const chip = chips[Math.max(0, Math.min(index, chips.length - 1))];
    if (!chip) return false;
    pendingFocus = null;  // the person moved focus: a swap settling now must not take it back
    chips.forEach((c) => { c.tabIndex = -1; });
    chip.tabIndex = 0;
    chip.focus();
    return true;
  }

  function click(button, focus) {
    if (!button) return false;
    pendingFocus = focus;
    button.click();
    return true;
  }

  function onInputKey(e) {
    const field = e.target, opts = options(), open = isOpen();
    switch (e.key) {
      case "ArrowDown":
        if (open) { e.preventDefault(); setActive((activeIndex() + 1) % opts.length); }
        break;
      case "ArrowUp":
        if (open) { e.preventDefault(); const i = activeIndex(); setActive(i <= 0 ? opts.length - 1 : i - 1); }
        break;
      case "Enter":
        e.preventDefault();
        if (open && activeIndex() >= 0) accept(opts[activeIndex()]);
        else submitAdd();
        break;
      case "Tab":
        if (open && !e.shiftKey) { e.preventDefault(); accept(opts[Math.max(0, activeIndex())]); }
        break;
      case "Escape":
        if (open) { e.preventDefault(); field.dataset.closed = field.value; close(); }
        break;
      case "Backspace":
      case "ArrowLeft":
        if (field.selectionStart === 0 && field.selectionEnd === 0 && (e.key === "ArrowLeft" || !field.value)) {
          const chips = curatedChips();
          if (chips.length) { e.preventDefault(); close(); focusChip(chips, chips.length - 1); }
        }
        break;
    }
  }

  function onCuratedChipKey(e, chip) {
    const chips = curatedChips(), i = chips.indexOf(chip);
    switch (e.key) {
      case "ArrowLeft": case "ArrowUp": e.preventDefault(); focusChip(chips, i - 1); break;
      case "ArrowRight": case "ArrowDown":
        e.preventDefault();
        if (i + 1 < chips.length) focusChip(chips, i + 1); else input()?.focus();
        break;
      case "Home": e.preventDefault(); focusChip(chips, 0); break;
      case "End": case "Escape": e.preventDefault(); input()?.focus(); break;
      case "Backspace":  // the second Backspace: remove, then keep typing
        e.preventDefault();
        click(chip.querySelector("[data-remove]"), { kind: "input" });
        break;
      case "Delete":
        e.preventDefault();
        click(chip.querySelector("[data-remove]"), { kind: "curated", index: i });
        break;
      default:
        // Typing on a selected chip goes on in the input (focus moves before the key lands).
        if (e.key.length === 1 && plainKey(e)) input()?.focus();
    }
  }

  function onChipKey(e, chip) {
    const list = chip.closest("[data-chip-list]"), column = chip.closest("[data-set]");
    const chips = Array.from(list.querySelectorAll("[data-chip]")), i = chips.indexOf(chip);
    switch (e.key) {
      case "ArrowLeft": case "ArrowUp": e.preventDefault(); focusChip(chips, i - 1); break;
      case "ArrowRight": case "ArrowDown": e.preventDefault(); focusChip(chips, i + 1); break;
      case "Home": e.preventDefault(); focusChip(chips, 0); break;
      case "End": e.preventDefault(); focusChip(chips, chips.length - 1); break;
      case "p":
        if (column && plainKey(e)) {
          const focus = { kind: "set", set: column.dataset.set, name: chip.dataset.name };
          if (click(chip.querySelector("[data-promote]"), focus)) e.preventDefault();
        }
        break;
    }
  }

  function promoteAll(column, from) {
    const button = column.querySelector("[data-promote-all]");
    if (!button) return;
    if (button.disabled) {
      const live = $("tag-editor-live");
      if (live) live.textContent = "Nothing to promote from this set at this threshold.";
      return;
    }
    pendingFocus = { kind: "set", set: column.dataset.set, name: from?.dataset?.name || "" };
    button.form.requestSubmit();
  }

  document.addEventListener("keydown", (e) => {
    const target = e.target;
    if (!(target instanceof Element)) return;
    if (target.id === "tag-input") return onInputKey(e);
    const chip = target.closest("[data-chip]");
    if (chip && chip.closest("#curated-chips")) return onCuratedChipKey(e, chip);
    const column = target.closest(".tag-editor [data-set]");
    if (column && e.key === "P" && e.shiftKey && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      return promoteAll(column, chip);
    }
    if (chip && chip.closest("[data-chip-list]")) return onChipKey(e, chip);
    // `t` from anywhere that is not a field: jump to the tag input.
    if (e.key === "t" && plainKey(e) && !typing(target) && input()) {
      e.preventDefault();
      input().scrollIntoView({ block: "center" });
      input().focus();
    }
  });

  // Suggestions: open after each answer, pick with the mouse without losing the input's focus.
  document.addEventListener("htmx:afterSwap", (e) => {
    if (e.detail.target && e.detail.target.id === "tag-suggestions") openIfAny();
  });
  document.addEventListener("input", (e) => {
    if (e.target.id === "tag-input") {
      delete e.target.dataset.closed;
      if (!e.target.value.trim()) close();
    }
  });
  document.addEventListener("mousedown", (e) => {
    if (e.target instanceof Element && e.target.closest("#tag-suggestions [role=option]")) e.preventDefault();
  });
  document.addEventListener("click", (e) => {
    if (!(e.target instanceof Element)) return;
    const option = e.target.closest("#tag-suggestions [role=option]");
    if (option) return accept(option);
    const field = e.target.closest("[data-tag-field]");
    if (field && !e.target.closest("button, [data-chip], a")) input()?.focus();
  });
  document.addEventListener("focusout", (e) => {
    if (e.target.id === "tag-input") close();
  });

  // Threshold: dim the tags below it and recount what promote would add, as it changes.
  document.addEventListener("input", (e) => {
    if (!(e.target instanceof Element) || !e.target.matches("[data-threshold]")) return;
    const column = e.target.closest("[data-set]"), minimum = Number(e.target.value || 0) * 100;
    let count = 0;
    column.querySelectorAll("[data-chip][data-conf]").forEach((chip) => {
      const below = Number(chip.dataset.conf) < minimum;
      chip.classList.toggle("below", below);
      if (!below && !chip.classList.contains("curated") && !chip.classList.contains("blocked")) count += 1;
    });
    const counter = column.querySelector("[data-promote-count]");
    if (counter) counter.textContent = String(count);
    const button = column.querySelector("[data-promote-all]");
    if (button) button.disabled = count === 0;
  });

  // A stale set answers 409 with its current state: show it (htmx swaps only 2xx and 422 here).
  document.addEventListener("htmx:beforeSwap", (e) => {
    const target = e.detail.target;
    if (e.detail.xhr.status === 409 && target && target.closest && target.closest(".tag-editor-wrap")) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });

  // Put focus back where the keyboard user was once the new editor is in place.
  document.addEventListener("htmx:load", (e) => {
    if (!(e.target instanceof Element) || e.target.id !== "tag-editor") return;
    const field = input();
    if (restore && field && !field.value) field.value = restore;  // refused: fix it and retry
    restore = "";
    const focus = pendingFocus;
    pendingFocus = null;
    if (!focus) return;
    if (focus.kind === "curated") {
      const chips = curatedChips();
      if (!chips.length || focus.index >= chips.length) input()?.focus();
      else focusChip(chips, focus.index);
    } else if (focus.kind === "set") {
      const column = e.target.querySelector(`[data-set="${focus.set}"]`);
      const chips = column ? Array.from(column.querySelectorAll("[data-chip]")) : [];
      const index = chips.findIndex((c) => c.dataset.name === focus.name);
      if (chips.length) focusChip(chips, Math.max(0, index));
    } else {
      input()?.focus();
    }
  });
})();
