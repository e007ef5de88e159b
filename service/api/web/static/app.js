// nestml-registry pages: a little progressive enhancement. Every page works without this script.
// - copy buttons (data-copy="ID": the text of the element ID)
// - search as you type on the models page (the page itself is fetched and its results swapped in)
// - live pages (data-live="MS" on <main>): fetched again every MS ms and swapped in until it stops being live
"use strict";

function swapFrom(html, ids) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  for (const id of ids) {
    const fresh = doc.getElementById(id), old = document.getElementById(id);
    if (fresh && old) old.replaceWith(document.importNode(fresh, true));
  }
  wireCopyButtons(document);
  return doc;
}

function wireCopyButtons(root) {
  for (const button of root.querySelectorAll("button.copy[data-copy]")) {
    if (button.dataset.wired) continue;
    button.dataset.wired = "1";
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const text = source.textContent;
      try {
        await navigator.clipboard.writeText(text);
      } catch (e) {  // no clipboard permission (plain http on another host): select it for Ctrl+C
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1200);
    });
  }
}

function searchAsYouType() {
  const form = document.getElementById("search");
  if (!form) return;
  let timer = null, seq = 0;
  const run = async () => {
    const params = new URLSearchParams(new FormData(form));
    const url = form.action.split("?")[0] + "?" + params.toString();
    const mine = ++seq;
    const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (mine !== seq || !response.ok) return;
    swapFrom(await response.text(), ["results"]);
    history.replaceState(null, "", url);
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 250); });
}

function livePage() {
  const main = document.querySelector("main[data-live]");
  if (!main) return;
  const every = Math.max(1000, parseInt(main.dataset.live, 10) || 2000);
  const ids = Array.from(main.querySelectorAll("[id]")).filter(e => e.parentElement.closest("[id]") === null
                                                              || e.parentElement === main).map(e => e.id);
  const tick = async () => {
    try {
      const response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (response.ok) {
        const doc = swapFrom(await response.text(), ids);
        const freshMain = doc.querySelector("main");
        if (freshMain && !freshMain.hasAttribute("data-live")) {
          main.removeAttribute("data-live");
          location.reload();  // finished: the whole page (published models, log) once more
          return;
        }
      }
    } catch (e) { /* the server restarts: try again */ }
    setTimeout(tick, every);
  };
  setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  wireCopyButtons(document);
  searchAsYouType();
  livePage();
});
