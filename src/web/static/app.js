// The web UI's one script. Every page works without it; it adds a
// progress bar per uploaded file, drag and drop onto the upload form,
// and copy buttons for caps. Nothing is fetched from elsewhere.
"use strict";

function uploadOne(action, file, extra, row) {
  return new Promise((resolve) => {
    const bar = row.querySelector("progress");
    const state = row.querySelector(".state");
    const data = new FormData();
    for (const [k, v] of extra) data.append(k, v);
    data.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", action);
    xhr.setRequestHeader("Accept", "text/plain");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; }
    };
    xhr.onload = () => {
      const ok = xhr.status >= 200 && xhr.status < 300;
      bar.value = bar.max;
      state.textContent = ok ? "done" : "failed: " + xhr.responseText.trim();
      state.className = "state " + (ok ? "ok" : "bad");
      resolve(ok);
    };
    xhr.onerror = () => { state.textContent = "failed"; state.className = "state bad"; resolve(false); };
    xhr.send(data);
  });
}

async function uploadAll(form, files) {
  if (!files.length) return;
  const list = form.querySelector(".progress");
  const action = form.getAttribute("action");
  const extra = [];
  for (const el of form.elements) {
    if (el.name && el.type !== "file" && el.name !== "when_done" &&
        !(el.type === "checkbox" && !el.checked)) extra.push([el.name, el.value]);
  }
  const rows = Array.from(files).map((f) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = f.name;
    const bar = document.createElement("progress");
    bar.max = f.size || 1; bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + f.name);
    const state = document.createElement("span");
    state.className = "state"; state.textContent = "uploading";
    li.append(name, bar, state);
    list.append(li);
    return li;
  });
  let allOk = true;
  // Two at a time: enough to keep the grid busy.
  let next = 0;
  async function worker() {
    while (next < files.length) {
      const i = next++;
      if (!(await uploadOne(action, files[i], extra, rows[i]))) allOk = false;
    }
  }
  await Promise.all([worker(), worker()]);
  if (allOk) location.reload();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-upload]")) {
    const input = form.querySelector("input[type=file]");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      uploadAll(form, input.files);
    });
    const drop = form.querySelector("[data-drop]");
    if (drop) {
      const hint = drop.querySelector(".hint");
      if (hint) hint.hidden = false;
      drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
      drop.addEventListener("dragleave", () => drop.classList.remove("over"));
      drop.addEventListener("drop", (e) => {
        e.preventDefault();
        drop.classList.remove("over");
        uploadAll(form, e.dataTransfer.files);
      });
    }
  }
  for (const b of document.querySelectorAll("button[data-copy]")) {
    b.hidden = false;
    b.addEventListener("click", async () => {
      const input = document.getElementById(b.dataset.copy);
      input.select();
      try { await navigator.clipboard.writeText(input.value); b.textContent = "Copied"; }
      catch (_) { document.execCommand("copy"); b.textContent = "Copied"; }
    });
  }
});
