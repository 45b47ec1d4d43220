// Booking pages work without this script; it only shows times in the visitor's own time zone.
(function () {
  "use strict";
  var form = document.querySelector('form[data-module="timezone"]');
  if (!form) return;
  var select = form.querySelector("select[name=tz]");
  var params = new URLSearchParams(window.location.search);
  var detected;
  try { detected = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { detected = null; }
  // Choosing a zone shows it at once; the submit button stays for browsers without this script.
  select.addEventListener("change", function () { form.submit(); });
  if (!params.has("tz") && detected && detected !== select.value &&
      select.querySelector('option[value="' + detected + '"]')) {
    select.value = detected;
    form.submit();
  }
})();
