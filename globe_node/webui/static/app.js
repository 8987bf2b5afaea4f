// GlobE Link web UI: the little that a form cannot do.  Served from the node itself
// (script-src 'self'); no inline script anywhere.  Every page works without it,
// except attachments, which are streamed to the node before the message is sent.
"use strict";

document.documentElement.classList.add("js");

// A message's delivery and request states, refreshed in place.
const LIVE_INTERVAL_MS = 2000;

function startLive(box) {
  const url = box.dataset.live;
  let last = box.innerHTML;
  let stopped = false;
  async function tick() {
    if (stopped) return;
    try {
      const resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!resp.ok) { stopped = true; return; }  // signed out, or gone: stop asking
      const html = await resp.text();
      if (html !== last) { box.innerHTML = html; last = html; }
    } catch (e) {
      // the node is restarting: try again at the next tick
    }
    window.setTimeout(tick, LIVE_INTERVAL_MS);
  }
  window.setTimeout(tick, LIVE_INTERVAL_MS);
}

// Attachments: each chosen file is streamed to POST /ui/uploads (the API's staging,
// with its Content-Length), and the form then names the upload by its id.
function startUpload(input) {
  const form = input.form;
  const list = input.parentElement.querySelector(".staged");
  const token = form.querySelector("input[name=csrf]").value;
  const submit = form.querySelector("button[type=submit]");
  let pending = 0;
  input.addEventListener("change", () => {
    for (const file of Array.from(input.files)) {
      const item = document.createElement("li");
      const progress = document.createElement("progress");
      progress.max = file.size || 1;
      progress.value = 0;
      progress.setAttribute("aria-label", input.dataset.uploading + " " + file.name);
      item.textContent = file.name + " ";
      item.appendChild(progress);
      list.appendChild(item);
      const type = (file.type || "application/octet-stream").toLowerCase().split(";")[0];
      const url = input.dataset.upload + "?name=" + encodeURIComponent(file.name) +
        "&media_type=" + encodeURIComponent(type);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRF-Token", token);
      xhr.upload.addEventListener("progress", (e) => { progress.value = e.loaded; });
      pending += 1;
      submit.disabled = true;
      xhr.addEventListener("loadend", () => {
        pending -= 1;
        if (pending === 0) submit.disabled = false;
        if (xhr.status === 201) {
          const staged = JSON.parse(xhr.responseText);
          const hidden = document.createElement("input");
          hidden.type = "hidden";
          hidden.name = "attachment";
          hidden.value = staged.id;
          form.appendChild(hidden);
          progress.remove();
          const hash = document.createElement("code");
          hash.textContent = "SHA-256 " + staged.sha256;
          item.dataset.upload = staged.id;
          item.appendChild(hash);
        } else {
          progress.remove();
          item.classList.add("failed");
          item.appendChild(document.createTextNode(input.dataset.failed));
        }
      });
      xhr.send(file);
    }
    input.value = "";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(startLive);
  document.querySelectorAll("input[data-upload]").forEach(startUpload);
});
