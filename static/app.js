// Progressive enhancement only: every page works without it.
// Live updates (the realtime issue) will attach here.
document.addEventListener("DOMContentLoaded", () => {
  const failed = document.querySelector(".actions details[open] input, .actions details[open] select");
  if (failed) failed.focus();
});
