// Progressive enhancement only: every page works without it.
// Live updates (the realtime issue) will attach here.
document.addEventListener("DOMContentLoaded", () => {
  const failed = document.querySelector(".actions details[open] input:not([type=hidden]), .actions details[open] select");
  if (failed) failed.focus();
  // "select every row on this page" for printing tags
  const all = document.querySelector("input.pick-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll('input[name="id"][form="labels"]').forEach((box) => { box.checked = all.checked; });
    });
  }
});
