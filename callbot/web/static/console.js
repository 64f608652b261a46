// callbot console: progressive enhancement only — every page works without it.
"use strict";

document.addEventListener("htmx:configRequest", (event) => {
  const csrf = document.body.dataset.csrf;
  if (csrf) event.detail.headers["X-CSRF-Token"] = csrf;
});

// --- mailbox list: keyboard -------------------------------------------------------------------------------
function mailboxKeys() {
  const table = document.getElementById("mailbox-list");
  if (!table) return;
  const rows = Array.from(table.querySelectorAll("tbody tr[data-href]"));
  let current = -1;
  const select = (index) => {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((row, i) => row.classList.toggle("selected", i === current));
    rows[current].scrollIntoView({ block: "nearest" });
  };
  rows.forEach((row, i) => row.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    window.location = row.dataset.href;
  }));
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select")) return;
    if (event.key === "j") select(current + 1);
    else if (event.key === "k") select(current - 1);
    else if (event.key === "Enter" && current >= 0) window.location = rows[current].dataset.href;
    else if (event.key === "/") { event.preventDefault(); document.getElementById("search").focus(); }
    else if (event.key === "m") { const mine = document.getElementById("mine"); mine.checked = !mine.checked; mine.form.submit(); }
    else return;
  });
}

// --- one message: the word being spoken follows the audio; a click on a word seeks there ---------------
function followTranscript() {
  const player = document.getElementById("player");
  const transcript = document.getElementById("transcript");
  if (!player || !transcript) return;
  const words = Array.from(transcript.querySelectorAll(".w")).map((span) => ({
    span, start: parseFloat(span.dataset.start), end: parseFloat(span.dataset.end),
  }));
  let shown = null;
  const update = () => {
    const t = player.currentTime;
    const word = words.find((w) => t >= w.start && t < w.end) || null;
    if (word !== shown) {
      if (shown) shown.span.classList.remove("current");
      if (word) word.span.classList.add("current");
      shown = word;
    }
  };
  const tick = () => { update(); if (!player.paused) requestAnimationFrame(tick); };
  player.addEventListener("play", () => requestAnimationFrame(tick));
  player.addEventListener("timeupdate", update);
  player.addEventListener("seeked", update);
  words.forEach((w) => w.span.addEventListener("click", () => {
    player.currentTime = w.start + 0.01;
    player.play();
  }));
}

// --- copy a caller number -----------------------------------------------------------------------------------
function copyButtons() {
  document.querySelectorAll("button[data-copy]").forEach((button) => button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(button.dataset.copy);
    button.textContent = button.dataset.copied;
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  mailboxKeys();
  followTranscript();
  copyButtons();
});
