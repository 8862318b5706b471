// Near-duplicate warnings and supplier records while a form is filled in (issue 15).
// Progressive enhancement: without it the server shows the same panels after a submit.
(() => {
  const debounce = (fn, ms) => { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; };

  async function fill(box, url) {
    try {
      const r = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (r.ok) box.innerHTML = await r.text();
    } catch (e) { /* offline: the server checks again on submit */ }
  }

  // the request form: similar samples in flight, live as the buyer types
  const form = document.getElementById("request-form");
  const similar = document.getElementById("similar");
  if (form && similar) {
    const lookup = debounce(() => {
      const q = new URLSearchParams();
      for (const [field, param] of [["title", "title"], ["style_code", "style"], ["category", "category"],
                                    ["season", "season"], ["supplier", "supplier"]]) {
        const el = form.elements[field];
        if (el && el.value) q.set(param, el.value);
      }
      if ((q.get("title") || "").trim().length < 4 && !q.get("style")) { similar.innerHTML = ""; return; }
      fill(similar, `${similar.dataset.url}?${q}`);
    }, 300);
    form.addEventListener("input", lookup);
    form.addEventListener("change", lookup);
  }

  // any form with a supplier choice: that supplier's quality record beside it
  document.querySelectorAll(".supplier-live").forEach((box) => {
    const select = box.closest("form") && box.closest("form").elements["supplier"];
    if (!select) return;
    const show = () => {
      if (!select.value) { box.innerHTML = ""; return; }
      fill(box, box.dataset.recordUrl.replace(/\/0\/record$/, `/${encodeURIComponent(select.value)}/record`));
    };
    select.addEventListener("change", show);
    if (select.value) show();
  });
})();
