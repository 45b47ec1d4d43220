// Links marked data-dialog open their page's [data-dialog-content] in a <dialog> instead of navigating.
// Without this script they are ordinary links to full pages, which do the same job.
export function initDialogs(root) {
  const dialog = document.createElement("dialog");
  dialog.setAttribute("aria-modal", "true");
  document.body.append(dialog);
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog || event.target.closest("[data-dialog-close]")) dialog.close();
  });
  root.addEventListener("click", async (event) => {
    const link = event.target.closest("a[data-dialog]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    const response = await fetch(link.href, { headers: { Accept: "text/html" } });
    if (!response.ok) { window.location.href = link.href; return; }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const content = page.querySelector("[data-dialog-content]");
    if (!content) { window.location.href = link.href; return; }
    dialog.replaceChildren(content);
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.setAttribute("data-dialog-close", "");
    dialog.prepend(close);
    dialog.showModal();
    // Same enhancements inside the dialog as on a page.
    dialog.dispatchEvent(new CustomEvent("punctual:content", { bubbles: true }));
    dialog.querySelector("input, select, textarea, a[href]")?.focus();
  });
}
