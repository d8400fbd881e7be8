// Gallery, rendering (image + feature maps), painting regions, edit tabs, recipes and directions.
import {$, api, debounce, ignore, layerInfo, latentOf, psi, recipeJSON, seedOptions, showError, state, tab,
        throttle} from "./core.js";
import {showStats} from "./discover.js";

// ------------------------------------------------------------------ gallery
export async function loadGallery() {
  const first = parseInt($("#gallery-seed").value) || 0;
  const count = Math.min(Math.max(parseInt($("#gallery-count").value) || 8, 1), state.info.max_seeds);
  const seeds = Array.from({length: count}, (_, i) => first + i);
  const data = await api("gallery", {seeds, psi: psi(), ...seedOptions(), noise_mode: $("#noise-mode").value});
  const gallery = $("#gallery");
  gallery.replaceChildren(...data.images.map((src, i) => {
    const img = document.createElement("img");
    img.src = src;
    img.dataset.seed = seeds[i];
    img.title = `seed ${seeds[i]}`;
    img.addEventListener("click", () => select({seed: seeds[i]}, `seed ${seeds[i]}`));
    return img;
  }));
}

export function select(latent, label) {
  state.current = latent;
  $("#current-label").textContent = label;
  for (const img of document.querySelectorAll("#gallery img"))
    img.classList.toggle("selected", latent.seed !== undefined && +img.dataset.seed === latent.seed);
  render();
}

// ------------------------------------------------------------------ rendering
// render: after a pause in the changes (typing, painting); renderLive: while a slider is dragged,
// at most every 100 ms and one request at a time. Errors appear next to the last control used.
const renderShown = () => renderNow().catch((e) => showError(e.message, state.lastControl));
export const render = debounce(renderShown, 120);
export const renderLive = throttle(renderShown, 100);

export async function renderNow() {
  if (!state.current) return;
  const seq = ++state.seq;
  const sort = $("#sort-select").value, layer = $("#layer-select").value, t = tab();
  const body = {...latentOf(state.current), recipe: recipeJSON(), layer, sort,
                sort_maps: $("#sort-unedited").checked ? "unedited" : "edited",
                noise_mode: $("#noise-mode").value};
  if (sort !== "channel" && t && t.mask && t.layer === layer) body.selection = t.mask;
  if (t && t.layer === layer && t.channels.trim()) body.stats_channels = t.channels;
  const data = await api("render", body);
  if (seq !== state.seq) return;  // a newer render is on its way
  state.edited = data.image;
  showResult().catch(ignore);
  state.maps = data.maps;
  showStats(data.maps);
  const grid = $("#maps-image");
  grid.src = data.maps.grid;
  await grid.decode().catch(ignore);
  drawMaps();
  drawFocus();
  drawMasks();
  showInEffect();
}

// Before/after: #show-before (or holding #hold-before) shows the current latent without the
// recipe; the unedited image is fetched once per latent.
export async function showResult() {
  const before = $("#show-before").checked || state.holding;
  const img = $("#result-image");
  if (!before) { if (state.edited) img.src = state.edited; img.title = "after: with the edits"; return; }
  const latent = state.current && latentOf(state.current), key = JSON.stringify(latent);
  if (!latent) return;
  if (!state.unedited || state.unedited.key !== key) {
    const data = await api("render", {...latent, noise_mode: $("#noise-mode").value});
    state.unedited = {key, image: data.image};
  }
  if ($("#show-before").checked || state.holding) {
    img.src = state.unedited.image;
    img.title = "before: without the edits";
  }
}

export function drawMaps() {
  const maps = state.maps, grid = $("#maps-image");
  if (!maps) return;
  const scale = Math.max(1, Math.floor(420 / grid.naturalWidth));
  grid.style.width = grid.naturalWidth * scale + "px";
  const overlay = $("#maps-overlay");
  overlay.width = grid.naturalWidth * scale;
  overlay.height = grid.naturalHeight * scale;
  const ctx = overlay.getContext("2d");
  const [h, w] = [maps.layer.height, maps.layer.width], t = tab();
  const chosen = new Set(t && t.layer === maps.layer.name ? channelList(t.channels) : []);
  const numbers = w * scale >= 14;  // room for a channel number in each cell
  ctx.font = `${Math.min(12, Math.floor(w * scale / 2.5))}px sans-serif`;
  ctx.textBaseline = "top";
  state.mapNumbers = [];
  maps.order.forEach((channel, i) => {
    const x = (i % maps.cols) * (w + maps.gap), y = Math.floor(i / maps.cols) * (h + maps.gap);
    if (numbers) {  // the channel's number on a light patch in the cell's corner
      const text = String(channel), width = ctx.measureText(text).width;
      ctx.fillStyle = "rgba(255,255,255,0.75)";
      ctx.fillRect(x * scale, y * scale, width + 3, 12);
      ctx.fillStyle = "#000";
      ctx.fillText(text, x * scale + 1, y * scale + 1);
      state.mapNumbers.push(channel);
    }
    if (!chosen.has(channel) && channel !== state.focus) return;
    ctx.strokeStyle = channel === state.focus ? "#06f" : "#000";
    ctx.lineWidth = 2;
    ctx.strokeRect(x * scale + 1, y * scale + 1, w * scale - 2, h * scale - 2);
  });
  overlay.dataset.numbers = state.mapNumbers.join(",");  // the numbers drawn, cell by cell
}

export function channelList(text) {  // only for highlighting; the server parses channel lists
  const out = [];
  for (const item of text.split(",")) {
    const m = item.trim().match(/^(\d+)(?:\s*-\s*(\d+))?/);
    if (m) for (let c = +m[1]; c <= +(m[2] ?? m[1]); c++) out.push(c);
  }
  return out;
}

export function drawFocus() {
  const maps = state.maps, canvas = $("#focus-map");
  if (!maps) return;
  const i = maps.order.indexOf(state.focus), {height: h, width: w} = maps.layer;
  canvas.width = w; canvas.height = h;  // (also clears it)
  if (i < 0) { $("#focus-label").textContent = "click a map to focus it"; return; }
  const x = (i % maps.cols) * (w + maps.gap), y = Math.floor(i / maps.cols) * (h + maps.gap);
  canvas.getContext("2d").drawImage($("#maps-image"), x, y, w, h, 0, 0, w, h);
  $("#focus-label").textContent = `channel ${state.focus}` +
    (maps.values ? ` (${maps.values[i].toFixed(3)})` : "");
}

export function drawMasks() {
  const t = tab(), info = t && layerInfo(t.layer);
  for (const canvas of [$("#paint-image"), $("#paint-map")]) {
    if (!info) { canvas.width = canvas.height = 1; continue; }
    const k = 8;  // canvas pixels per cell, so that region borders can be drawn
    canvas.width = info.width * k; canvas.height = info.height * k;
    const ctx = canvas.getContext("2d");
    if (!t.mask) continue;
    const sign = (y, x) => Math.sign((t.mask[y] || [])[x] || 0);
    t.mask.forEach((row, y) => row.forEach((v, x) => {
      if (!v) return;
      const colour = v > 0 ? "0,120,255" : "255,140,0";
      ctx.fillStyle = `rgba(${colour},${0.4 * Math.min(1, Math.abs(v))})`;
      ctx.fillRect(x * k, y * k, k, k);
      ctx.fillStyle = `rgb(${colour})`;  // border where the region ends
      if (sign(y - 1, x) !== sign(y, x)) ctx.fillRect(x * k, y * k, k, 1);
      if (sign(y + 1, x) !== sign(y, x)) ctx.fillRect(x * k, y * k + k - 1, k, 1);
      if (sign(y, x - 1) !== sign(y, x)) ctx.fillRect(x * k, y * k, 1, k);
      if (sign(y, x + 1) !== sign(y, x)) ctx.fillRect(x * k + k - 1, y * k, 1, k);
    }));
  }
  $("#mask-info").textContent = !t ? "" : t.mask ? "region painted" : "region: whole map";
  for (const canvas of [$("#paint-image"), $("#paint-map")]) canvas.classList.toggle("hidden-mask", $("#hide-mask").checked);
}

// A canonical channel list ("0-3,7*-0.375") as a readable one: "0-3 ×1, 7 ×-0.375".
export function readableChannels(text) {
  return text.split(",").filter((item) => item.trim()).map((item) => {
    const [channels, multiplier] = item.trim().split("*");
    return `${channels} ×${multiplier === undefined ? 1 : +multiplier}`;
  }).join(", ");
}

// What the active edit does now, as the server will apply it.
export function showInEffect() {
  const t = tab();
  $("#channels-readable").textContent = t && t.channels ? readableChannels(t.channels) : "no channels";
  if (!t) { $("#in-effect").textContent = ""; return; }
  const parts = [t.enabled ? "on" : "off", `layer ${t.layer}`,
                 t.channels ? `channels ${readableChannels(t.channels)}` : "no channels (no effect)",
                 `amount ${t.amount}`, t.mask ? "in the painted region" : "on the whole map"];
  if (t.locator) parts.push(`placed by locator "${t.locator}" (anchor ${t.anchor.map((a) => a.toFixed(2)).join(", ")})`);
  $("#in-effect").textContent = "in effect: " + parts.join(" · ");
}

// ------------------------------------------------------------------ painting (a disc of cells and the cell under the pointer)
export function paintAt(event, canvas) {
  const t = tab(), info = layerInfo(t.layer), rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) / rect.width * info.width;
  const y = (event.clientY - rect.top) / rect.height * info.height;
  const value = {add: 1, subtract: -1, erase: 0}[document.querySelector("input[name=paint]:checked").value];
  const r = parseFloat($("#brush").value);
  if (!t.mask) t.mask = Array.from({length: info.height}, () => new Array(info.width).fill(0));
  for (let i = 0; i < info.height; i++)
    for (let j = 0; j < info.width; j++)
      if ((i + 0.5 - y) ** 2 + (j + 0.5 - x) ** 2 <= r * r || (i === Math.floor(y) && j === Math.floor(x)))
        t.mask[i][j] = value;
  drawMasks();
}

export function attachPainter(canvas) {
  let painting = false;
  canvas.addEventListener("pointerdown", (e) => {
    if (!tab()) addTab();
    painting = true;
    canvas.setPointerCapture(e.pointerId);
    paintAt(e, canvas);
  });
  canvas.addEventListener("pointermove", (e) => { if (painting) paintAt(e, canvas); });
  const stop = () => { if (painting) { painting = false; render(); } };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
}

// ------------------------------------------------------------------ edit tabs
export function newTab(layer) {
  return {name: `edit ${state.tabs.length + 1}`, layer, channels: "", amount: 1, enabled: true,
          mask: null, locator: null, anchor: null};
}

export function addTab(edit) {
  state.tabs.push(edit || newTab($("#layer-select").value));
  state.active = state.tabs.length - 1;
  showTab();
}

export function showTab() {
  const t = tab();
  $("#tabs").replaceChildren(...state.tabs.map((x, i) => {
    const button = document.createElement("button");
    button.textContent = x.name || `edit ${i + 1}`;
    button.className = i === state.active ? "tab active" : "tab";
    button.addEventListener("click", () => { state.active = i; showTab(); render(); });
    return button;
  }));
  if (!t) return;
  $("#tab-name").value = t.name;
  $("#tab-enabled").checked = t.enabled;
  $("#channels").value = t.channels;
  $("#amount").value = t.amount;
  $("#amount-value").value = t.amount;
  $("#layer-select").value = t.layer;
  const locators = Object.keys(state.locators);
  $("#tab-locator").replaceChildren(new Option("none", ""), ...locators.map((n) => new Option(n, n)));
  $("#tab-locator").value = t.locator || "";
  drawMasks();
  showInEffect();
}

export async function toggleChannel(channel) {
  if (!tab()) addTab();
  const t = tab();
  if (t.layer !== state.maps.layer.name) { t.layer = state.maps.layer.name; t.mask = null; }
  const data = await api("channels", {layer: t.layer, text: t.channels, toggle: channel});
  t.channels = data.text;
  showTab();
  render();
}

export function setAmount(value, live = false) {
  if (!tab() || !isFinite(value)) { if (tab()) showTab(); return; }  // the field shows what is in effect
  tab().amount = value;
  $("#amount").value = value;
  $("#amount-value").value = value;
  showInEffect();
  (live ? renderLive : render)();
}

// ------------------------------------------------------------------ recipes, directions
export function setRecipe(recipe) {
  $("#recipe-name").value = recipe.name || "";
  state.locators = recipe.locators || {};
  state.directions = recipe.directions || [];
  state.tabs = recipe.edits.map((e) => ({...e}));
  state.active = state.tabs.length - 1;
  if (!state.tabs.length) addTab(); else showTab();
  showDirections();
  render();
}

export function showDirections() {
  $("#directions").replaceChildren(...state.directions.map((d, i) => {
    const row = document.createElement("div");
    row.className = "direction";
    const slider = Object.assign(document.createElement("input"),
                                 {type: "range", min: -5, max: 5, step: 0.1, value: d.strength});
    slider.id = `direction-${i}`;
    const value = Object.assign(document.createElement("output"), {textContent: d.strength});
    slider.addEventListener("input", () => {
      d.strength = parseFloat(slider.value);
      value.textContent = d.strength;
      state.lastControl = "#" + slider.id;
      renderLive();
    });
    const remove = Object.assign(document.createElement("button"), {textContent: "×"});
    remove.addEventListener("click", () => { state.directions.splice(i, 1); showDirections(); render(); });
    row.append(`${d.name || "direction"} `, slider, value, remove);
    return row;
  }));
}

