// The merge-field picker: search the list, insert "{{ path }}" at the cursor of its field; the HTML
// body's toolbar (bold, italic, paragraph, link) wraps the selection in tags.
function insertAt(field, text) {
  const start = field.selectionStart ?? field.value.length;
  const end = field.selectionEnd ?? field.value.length;
  field.value = field.value.slice(0, start) + text + field.value.slice(end);
  field.selectionStart = field.selectionEnd = start + text.length;
  field.dispatchEvent(new Event("input", { bubbles: true }));
  field.focus();
}

export function initPickers(root) {
  root.querySelectorAll("[data-module=merge-picker]").forEach((picker) => {
    const field = document.getElementById(picker.dataset.target);
    if (!field) return;
    const search = picker.querySelector(".merge-search");
    search.hidden = false;
    search.addEventListener("input", () => {
      const q = search.value.trim().toLowerCase();
      picker.querySelectorAll(".merge-group").forEach((group) => {
        let shown = 0;
        group.querySelectorAll("[data-insert]").forEach((b) => {
          const match = !q || b.textContent.toLowerCase().includes(q);
          b.hidden = !match;
          shown += match ? 1 : 0;
        });
        group.hidden = shown === 0;
      });
    });
    picker.addEventListener("click", (event) => {
      const button = event.target.closest("[data-insert]");
      if (button) insertAt(field, button.dataset.insert);
    });
  });
  root.querySelectorAll("[data-module=toolbar]").forEach((bar) => {
    const field = document.getElementById(bar.dataset.target);
    if (!field) return;
    bar.hidden = false;
    bar.addEventListener("click", (event) => {
      const b = event.target.closest("button");
      if (!b) return;
      const selected = field.value.slice(field.selectionStart, field.selectionEnd);
      if (b.dataset.open) insertAt(field, b.dataset.open + (selected || "text") + b.dataset.close);
      else if (b.hasAttribute("data-link")) {
        const url = window.prompt("Link address (https://…)");
        if (url) insertAt(field, `<a href="${url.replace(/"/g, "%22")}">${selected || url}</a>`);
      }
    });
  });
}
