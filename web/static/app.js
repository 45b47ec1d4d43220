// Progressive enhancement: every page works without this; each module attaches to server markup.
import { initPickers } from "./picker.js";
import { initCounters } from "./counter.js";
import { initUnsavedWarning, initConfirm } from "./forms.js";
import { initLiveValidation } from "./validate.js";
import { initDialogs } from "./dialog.js";

document.addEventListener("DOMContentLoaded", () => {
  const summary = document.querySelector("[data-module=error-summary]");
  if (summary) summary.focus();
  initPickers(document);
  initCounters(document);
  initUnsavedWarning(document);
  initConfirm(document);
  initLiveValidation(document);
  initDialogs(document);
  document.addEventListener("punctual:content", (event) => {
    initPickers(event.target);
    initCounters(event.target);
    initConfirm(event.target);
  });
  document.documentElement.dataset.enhanced = "true";  // scripts attached (browser tests wait for this)
});
