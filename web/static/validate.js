// Live validation of the step form: after an edit pauses, POST the form to its validate URL and show
// every problem in the summary and beside its field (the server's words, the server's rules).
function render(form, data) {
  form.querySelectorAll(".live-error").forEach((el) => el.remove());
  form.querySelectorAll(".has-error.live").forEach((el) => el.classList.remove("has-error", "live"));
  let box = document.getElementById("live-summary");
  if (!data.problems.length) { if (box) box.hidden = true; return; }
  if (!box) {
    box = document.createElement("div");
    box.id = "live-summary";
    box.className = "error-summary";
    box.setAttribute("role", "alert");
    form.prepend(box);
  }
  box.hidden = false;
  box.innerHTML = "";
  const h = document.createElement("h2");
  h.textContent = data.problems.length === 1 ? "There is a problem" : `There are ${data.problems.length} problems`;
  const ul = document.createElement("ul");
  for (const p of data.problems) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = p.href;
    const code = document.createElement("code");
    code.textContent = p.path;
    a.append(code, `: ${p.message}`);
    li.append(a);
    ul.append(li);
  }
  box.append(h, ul);
  for (const [name, messages] of Object.entries(data.fields)) {
    const id = "field-" + name.replace(/[^A-Za-z0-9_-]+/g, "-");
    const el = document.getElementById(id);
    const wrap = el && (el.closest(".field, fieldset") || el);
    if (!wrap || wrap.querySelector(".error-message:not(.live-error)")) continue;
    wrap.classList.add("has-error", "live");
    for (const m of messages) {
      const p = document.createElement("p");
      p.className = "error-message live-error";
      p.textContent = m;
      const label = wrap.querySelector("label, legend");
      (label || wrap).after(p);
    }
  }
}

export function initLiveValidation(root) {
  root.querySelectorAll("form[data-validate-url]").forEach((form) => {
    let timer;
    const token = document.querySelector("meta[name=csrf-token]")?.content || "";
    const check = async () => {
      const body = new FormData(form);
      const response = await fetch(form.dataset.validateUrl, { method: "POST", body, headers: { "X-CSRFToken": token } });
      if (response.ok) render(form, await response.json());
    };
    form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 600); });
    form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(check, 300); });
  });
}
