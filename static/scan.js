// Scan mode (issue 14): a tag's number added to the basket on Enter (USB scanners type the
// number and Enter), or read from the camera with BarcodeDetector where the browser has it.
// Without this script the basket is a plain text area and everything still works.
(() => {
  const form = document.getElementById("scan-form");
  if (!form) return;
  const basket = form.elements["basket"];
  const scanner = form.querySelector(".scanner");
  const input = document.getElementById("scan-number");
  const status = form.querySelector(".scan-status");
  scanner.hidden = false;

  const numbers = () => basket.value.split(/[\s,;]+/).filter(Boolean);
  // the label's count follows the basket, however it is filled (scanned, typed, pasted)
  const count = form.querySelector(".basket-count");
  const recount = () => { if (count) count.textContent = numbers().length; };
  basket.addEventListener("input", recount);
  function add(raw) {
    const m = String(raw).match(/(?:\/samples\/)?#?(\d{1,18})/);
    if (!m) { status.textContent = `“${raw}” is not a sample number`; return; }
    const list = numbers();
    if (list.includes(m[1])) { status.textContent = `${m[1]} is already in the basket`; return; }
    list.push(m[1]);
    basket.value = list.join("\n");
    recount();
    status.textContent = `${m[1]} added · ${list.length} in the basket`;
    if (navigator.vibrate) navigator.vibrate(30);
  }
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); if (input.value.trim()) add(input.value.trim()); input.value = ""; }
  });
  form.querySelector(".scan-add").addEventListener("click", () => {
    if (input.value.trim()) add(input.value.trim()); input.value = ""; input.focus();
  });

  // only the value field the chosen move needs
  const action = form.elements["action"];
  const showFields = () => form.querySelectorAll(".move-field").forEach((el) => {
    el.hidden = !!action.value && !el.dataset.for.split(" ").includes(action.value);
  });
  action.addEventListener("change", showFields);
  showFields();

  // the camera, where the browser can read QR codes itself
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  const camera = form.querySelector(".scan-camera");
  const video = form.querySelector(".scan-video");
  camera.hidden = false;
  let stream = null;
  camera.addEventListener("click", async () => {
    if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; video.hidden = true; return; }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (e) { status.textContent = "The camera is not available; type the number instead."; return; }
    video.srcObject = stream; video.hidden = false; await video.play();
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    let last = "";
    const tick = async () => {
      if (!stream) return;
      try {
        const codes = await detector.detect(video);
        if (codes.length && codes[0].rawValue !== last) { last = codes[0].rawValue; add(last); }
      } catch (e) { /* a frame that could not be read */ }
      setTimeout(tick, 250);
    };
    tick();
  });
})();
