// "Make a character": the page's guided path, in three steps. 1: pick a character from a row of
// seeds; 2: change it with the model's ready-made sliders (GET /api/ready_edits: attribute
// directions and local edits found on this model), re-rendered while a slider moves (throttled);
// 3: animate it -- "talk" (the mouth edit opening and closing, the other sliders held) or "walk"
// to a second character (the sliders applied along the walk) -- as a GIF or MP4 export job, with
// a progress bar, a preview and a download link. Images appear only once they have content
// (placeholders before); every error shows beside the control that caused it (the field the
// server's reply names picks the control) and is scrolled into view; captions say what is shown.
import {$, api, psi, runJob, throttle} from "./core.js";

const ROW = 8;                 // characters per row
const THROTTLE_MS = 150;       // at most one render per this while a slider is dragged
const SIZES = [1, 2, 4, 8];    // enlargements offered; 4x is the default (a size worth sharing)
const g = {ready: null, first: 0, row: [], seed: null, walkTo: null, values: new Map(), seq: 0,
           result: null, height: 64, width: 32};

const PANEL = `
<h2>Make a character</h2>
<div class="guide-steps">
  <div class="guide-step" id="guide-step-pick">
    <h3>1 · Pick a character</h3>
    <div class="guide-row" id="guide-row"></div>
    <button id="guide-more" title="the next ${ROW} characters">more</button>
    <span class="guide-error" id="guide-row-error" role="alert"></span>
    <p class="hint">Each character is a seed: the same number always draws the same one. ψ in the
      top bar trades variety for typical looks. Then change it (2) and animate it (3).</p>
  </div>
  <figure class="guide-step" id="guide-step-preview">
    <div class="guide-frame" id="guide-preview"><div class="placeholder">pick a character</div></div>
    <figcaption id="guide-caption">no character yet</figcaption>
  </figure>
  <div class="guide-step" id="guide-step-edit">
    <h3>2 · Change it</h3>
    <div id="guide-sliders"><div class="placeholder line">loading the sliders…</div></div>
    <button id="guide-reset">reset sliders</button>
    <span class="guide-error" id="guide-sliders-error" role="alert"></span>
  </div>
  <div class="guide-step" id="guide-step-animate">
    <h3>3 · Animate it</h3>
    <div class="guide-field"><label><input type="radio" name="guide-anim" id="guide-talk" value="talk" checked> talk</label>
      <span class="hint" id="guide-talk-note"></span></div>
    <div class="guide-field"><label><input type="radio" name="guide-anim" id="guide-walk" value="walk"> walk to character</label>
      <input id="guide-walk-seed" type="number" min="0" step="1" size="7" title="the seed of the second character">
      <span class="guide-error" id="guide-walk-error" role="alert"></span>
      <div class="guide-row small" id="guide-walk-row"></div></div>
    <div class="guide-field"><label>frames <input id="guide-frames" type="number" min="2" max="120" value="16"></label>
      <span class="hint">(a walk: each way)</span>
      <span class="guide-error" id="guide-frames-error" role="alert"></span></div>
    <div class="guide-field"><label>size <select id="guide-size"></select></label>
      <span class="guide-error" id="guide-size-error" role="alert"></span>
      <label>format <select id="guide-format"><option value="gif">GIF</option><option value="mp4">MP4</option></select></label>
      <span class="guide-error" id="guide-format-error" role="alert"></span></div>
    <div class="guide-field"><button id="guide-animate">make the animation</button>
      <progress id="guide-progress" max="1" value="0" hidden></progress>
      <span class="guide-error" id="guide-animate-error" role="alert"></span></div>
    <div class="guide-frame small" id="guide-result"><div class="placeholder">your animation appears here</div></div>
    <a id="guide-download" hidden></a>
  </div>
</div>`;

// ------------------------------------------------------------------ errors beside their controls
// show(id) -> a function for api()/runJob(): the message goes to that control's error element,
// or to the one of the field the server's reply names (detail[0].field, or "field 'x'" in it).
const FIELD_ERRORS = [[/^frames/, "#guide-frames-error"], [/^seeds/, "#guide-walk-error"],
                      [/^scale/, "#guide-size-error"], [/^kind/, "#guide-format-error"],
                      [/^(recipe|oscillate)/, "#guide-sliders-error"]];
const ALL_ERRORS = ["#guide-row-error", "#guide-sliders-error", ...FIELD_ERRORS.map(([, id]) => id),
                    "#guide-walk-error", "#guide-animate-error"];

function show(id, fields = false) {
  return (message, error) => {
    let target = id;
    if (fields && message) {
      const detail = error && error.detail && error.detail[0];
      const named = detail ? detail.field : ((message.match(/field '([^']+)'/) || [])[1] || "");
      for (const [pattern, field] of FIELD_ERRORS) if (pattern.test(named)) { target = field; break; }
    }
    if (fields) for (const other of new Set(ALL_ERRORS)) if (other !== target) $(other).textContent = "";
    setError(target, message);
  };
}

function setError(id, message) {
  const element = $(id);
  element.textContent = message;
  if (message) element.scrollIntoView({block: "nearest", inline: "nearest"});
}

// An <img> is made only with its content, replacing the frame's placeholder (no broken icons).
function showMedia(frame, tag, src, alt) {
  let media = frame.querySelector(tag);
  if (!media) {
    media = document.createElement(tag);
    if (tag === "video") Object.assign(media, {autoplay: true, loop: true, muted: true, playsInline: true});
    media.alt = alt;
    media.src = src;
    frame.replaceChildren(media);
  } else {
    media.src = src;
  }
  return media;
}

// ------------------------------------------------------------------ step 1: characters
function placeholders(row, count) {
  row.replaceChildren(...Array.from({length: count}, () =>
    Object.assign(document.createElement("div"), {className: "placeholder thumb"})));
}

async function loadRow() {
  const seeds = Array.from({length: ROW}, (_, i) => g.first + i);
  placeholders($("#guide-row"), ROW);
  const data = await api("gallery", {seeds, psi: psi()}, show("#guide-row-error"));
  g.row = seeds.map((seed, i) => ({seed, src: data.images[i]}));
  $("#guide-row").replaceChildren(...g.row.map(({seed, src}) => thumb(seed, src, "guide-seed", () => pick(seed))));
  showWalkRow();
  markPicked();
}

function thumb(seed, src, className, onClick) {
  const button = Object.assign(document.createElement("button"), {className, title: `character ${seed}`});
  button.dataset.seed = seed;
  const img = Object.assign(document.createElement("img"), {src, alt: `character ${seed}`});
  button.append(img, Object.assign(document.createElement("span"), {textContent: seed}));
  button.addEventListener("click", onClick);
  return button;
}

function showWalkRow() {
  $("#guide-walk-row").replaceChildren(...g.row.map(({seed, src}) => thumb(seed, src, "guide-walk-seed", () => {
    $("#guide-walk").checked = true;
    setWalkTo(seed);
  })));
  markPicked();
}

function markPicked() {
  for (const b of document.querySelectorAll(".guide-seed")) b.classList.toggle("selected", +b.dataset.seed === g.seed);
  for (const b of document.querySelectorAll(".guide-walk-seed")) b.classList.toggle("selected", +b.dataset.seed === g.walkTo);
}

function pick(seed) {
  g.seed = seed;
  if (g.walkTo === null || g.walkTo === seed) setWalkTo(seed + 1);
  markPicked();
  renderSoon();
}

function setWalkTo(seed) {
  g.walkTo = seed;
  $("#guide-walk-seed").value = seed;
  setError("#guide-walk-error", "");
  markPicked();
}

// ------------------------------------------------------------------ step 2: sliders
// A slider's value scales its direction's strength or its edit's amount (1 = as found; 0 = off).
const key = (kind, item) => `${kind}:${item.name}`;
const value = (kind, item) => g.values.get(key(kind, item)) || 0;
const mouthEdit = () => g.ready && g.ready.edits.find((e) => /mouth/i.test(e.name));

function showSliders() {
  const box = $("#guide-sliders");
  if (!g.ready || (!g.ready.directions.length && !g.ready.edits.length)) {
    box.replaceChildren(Object.assign(document.createElement("p"), {className: "hint",
      textContent: "This model has no ready-made sliders. Make edits with the research tools below " +
                   "and save them as a recipe."}));
    return;
  }
  const group = (title, hint, kind, items, min, max) => {
    if (!items.length) return [];
    const heading = Object.assign(document.createElement("h4"), {textContent: title, title: hint});
    return [heading, ...items.map((item, i) => {
      const row = Object.assign(document.createElement("label"), {className: "guide-slider"});
      const input = Object.assign(document.createElement("input"),
                                  {type: "range", min, max, step: 0.05, value: value(kind, item)});
      input.id = `guide-${kind}-${i}`;
      input.dataset.name = item.name;
      const output = Object.assign(document.createElement("output"), {textContent: (+input.value).toFixed(2)});
      input.addEventListener("input", () => {
        g.values.set(key(kind, item), parseFloat(input.value));
        output.textContent = (+input.value).toFixed(2);
        renderSoon();
      });
      row.append(Object.assign(document.createElement("span"), {textContent: item.name}), input, output);
      return row;
    })];
  };
  box.replaceChildren(
    ...group("Attributes", "moves the whole character toward the attribute (found from the classifier's verdicts)",
             "direction", g.ready.directions, -2, 2),
    ...group("Local edits", "changes one part (found from two examples on this model)",
             "edit", g.ready.edits, 0, 1.5));
}

// The recipe the sliders make; talk: the mouth edit is kept (at its slider, or 1 when that is 0)
// so the animation has something to open.
function sliderRecipe(talk = false) {
  const r = g.ready || {directions: [], edits: [], locators: {}};
  const directions = r.directions.filter((d) => value("direction", d) !== 0)
    .map((d) => ({...d, strength: d.strength * value("direction", d)}));
  const mouth = mouthEdit();
  const edits = r.edits.filter((e) => value("edit", e) !== 0 || (talk && e === mouth))
    .map((e) => ({...e, amount: e.amount * (value("edit", e) || (talk ? 1 : 0))}));
  return {format: "stylegan_jax.recipe", version: 1, name: "character", locators: r.locators,
          directions, edits};
}

function describe() {
  if (!g.ready) return "";
  const moved = [...g.ready.directions.map((d) => [d.name, value("direction", d)]),
                 ...g.ready.edits.map((e) => [e.name, value("edit", e)])].filter(([, v]) => v !== 0);
  return moved.length ? moved.map(([n, v]) => `${n} ${v > 0 ? "+" : ""}${v.toFixed(2)}`).join(", ") : "no changes";
}

const renderSoon = throttle(renderCharacter, THROTTLE_MS);  // (its errors show beside the sliders)

async function renderCharacter() {
  if (g.seed === null) return;
  const seq = ++g.seq, seed = g.seed, settings = describe(), p = psi();
  const data = await api("render", {seed, psi: p, recipe: sliderRecipe()}, show("#guide-sliders-error"));
  if (seq !== g.seq) return;  // a newer render is on its way
  showMedia($("#guide-preview"), "img", data.image, `character ${seed}`);
  $("#guide-caption").textContent = `character ${seed}, ψ ${p.toFixed(2)}: ${settings}`;
}

// ------------------------------------------------------------------ step 3: animate
function showAnimateOptions() {
  $("#guide-size").replaceChildren(...SIZES.map((s) =>
    new Option(`${s}× (${g.height * s}×${g.width * s} px)`, s)));
  $("#guide-size").value = 4;
  const mouth = mouthEdit();
  $("#guide-talk").disabled = !mouth;
  if (!mouth) $("#guide-walk").checked = true;
  $("#guide-talk-note").textContent = mouth
    ? `the "${mouth.name}" edit opens and closes; the other sliders stay`
    : "(this model has no mouth edit)";
}

async function animate() {
  setError("#guide-animate-error", "");
  if (g.seed === null) { setError("#guide-animate-error", "pick a character in step 1 first"); return; }
  const talk = $("#guide-talk").checked, kind = $("#guide-format").value;
  const frames = Number($("#guide-frames").value), scale = Number($("#guide-size").value);
  let body = {kind, frames, scale, recipe: sliderRecipe(talk)};
  let name = `character${g.seed}_talk.${kind}`;
  if (talk) {
    body = {...body, animation: "oscillation", seed: g.seed, psi: psi(), oscillate: mouthEdit().name};
  } else {
    const to = $("#guide-walk-seed").value.trim();
    if (!/^\d+$/.test(to)) { setError("#guide-walk-error", "type the seed of the character to walk to (a whole number, 0 or more)"); return; }
    if (+to === g.seed) { setError("#guide-walk-error", "pick a different character to walk to"); return; }
    body = {...body, animation: "interpolation", seeds: [g.seed, +to, g.seed], psi: psi()};
    name = `character${g.seed}_walk_to_${to}.${kind}`;
  }
  const settings = `${talk ? "talk" : `walk to ${$("#guide-walk-seed").value} and back`}, ` +
    `${$("#guide-size").selectedOptions[0].textContent}, ${kind.toUpperCase()}`;
  const button = $("#guide-animate"), link = $("#guide-download");
  button.disabled = true;
  link.hidden = true;  // while a new one is made (shown again if that fails)
  let made = false;
  try {
    const response = await runJob("export", body, {show: show("#guide-animate-error", true), progress: $("#guide-progress")});
    const blob = await response.blob();
    if (g.result) URL.revokeObjectURL(g.result);
    g.result = URL.createObjectURL(blob);
    showMedia($("#guide-result"), kind === "gif" ? "img" : "video", g.result, "the animation");
    Object.assign(link, {href: g.result, download: name,
                         textContent: `download ${name} (${Math.ceil(blob.size / 1024)} KB: ${settings})`});
    made = true;
  } finally {
    button.disabled = false;
    link.hidden = !(made || g.result);
  }
}

// ------------------------------------------------------------------ wiring
async function start() {
  const panel = $("#guide");
  panel.innerHTML = PANEL;
  panel.after(Object.assign(document.createElement("h2"), {className: "guide-research",
    textContent: "Research tools: look inside the model, find and paint edits"}));
  placeholders($("#guide-row"), ROW);
  const on = (selector, event, handler) => $(selector).addEventListener(event, (...args) => {
    const result = handler(...args);
    if (result && result.catch) result.catch(() => {});  // shown beside the control already
  });
  on("#guide-more", "click", () => { g.first += ROW; return loadRow(); });
  on("#guide-reset", "click", () => { g.values.clear(); showSliders(); renderSoon(); });
  on("#guide-walk-seed", "input", () => {
    const v = $("#guide-walk-seed").value.trim();
    g.walkTo = /^\d+$/.test(v) ? +v : null;
    $("#guide-walk").checked = true;
    setError("#guide-walk-error", "");
    markPicked();
  });
  on("#guide-animate", "click", animate);
  on("#psi", "input", () => { loadRow().catch(() => {}); renderSoon(); });
  const [info, ready] = await Promise.all([api("info", undefined, show("#guide-row-error")),
                                           api("ready_edits", undefined, show("#guide-sliders-error"))]);
  [g.height, g.width] = info.image_shape;
  g.ready = ready.recipe;
  showSliders();
  showAnimateOptions();
  await loadRow();
}

window.addEventListener("DOMContentLoaded", () => start().catch(() => {}));
