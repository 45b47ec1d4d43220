// Character count, and for SMS the number of segments (GSM-7: 160 / 153 per part; Unicode: 70 / 67).
const GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€";

export function smsSegments(text) {
  const gsm = [...text].every((ch) => GSM.includes(ch));
  const units = gsm ? [...text].reduce((n, ch) => n + ("^{}\\[~]|€".includes(ch) ? 2 : 1), 0) : [...text].length;
  const single = gsm ? 160 : 70;
  const multi = gsm ? 153 : 67;
  const segments = units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi);
  return { units, segments, encoding: gsm ? "GSM-7" : "Unicode" };
}

export function initCounters(root) {
  root.querySelectorAll("textarea[data-counter]").forEach((field) => {
    const out = document.getElementById(field.id + "-counter");
    if (!out) return;
    const update = () => {
      if (field.dataset.counter === "sms") {
        const s = smsSegments(field.value);
        out.textContent = `${s.units} characters · ${s.segments} SMS segment${s.segments === 1 ? "" : "s"} (${s.encoding}; merge fields counted as typed)`;
      } else {
        out.textContent = `${field.value.length} characters`;
      }
    };
    field.addEventListener("input", update);
    update();
  });
}
