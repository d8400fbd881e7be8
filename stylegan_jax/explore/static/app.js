// Two-image tools (interpolation, style mixing, proposals, attribute vectors), exports, wiring.
import {$, api, debounce, download, ignore, latentOf, layerInfo, on, parseSeeds, psi, recipeJSON, runJob,
        seedOptions, showError, state, tab} from "./core.js";
import {addTab, attachPainter, drawFocus, drawMaps, drawMasks, loadGallery, render, select, setAmount, setRecipe,
        showDirections, showInEffect, showResult, showTab, toggleChannel} from "./editor.js";
import {setupDiscover} from "./discover.js";

// ------------------------------------------------------------------ two images: interpolation, mixing, proposals
function pick(slot) {
  if (!state.current) return;
  state[slot] = {...state.current};
  if (state.current.seed !== undefined) state[slot].psi = psi();  // the image as picked
  $("#pick-" + slot).src = $("#result-image").src;
}

async function showLatent(name, body, where) {
  if (!state.a || !state.b) { showError("pick A and B first", where); return; }
  const data = await api(name, {a: latentOf(state.a), b: latentOf(state.b), ...body});
  $("#latent-image").src = data.image;
  state.latentW = data.w;
}

async function propose() {
  const t = tab();
  if (!state.a || !state.b || !t || !t.mask) throw new Error("pick A and B and paint a region first");
  const data = await api("propose", {a: latentOf(state.a), b: latentOf(state.b), layer: t.layer,
                                     mask_a: t.mask, top_k: parseInt($("#propose-k").value) || 8});
  addTab({...data.edit, name: `proposed ${state.tabs.length + 1}`});
  render();
}

// ------------------------------------------------------------------ exports
// A number field's value clamped to its min/max (and written back: the field shows what is used).
function numberField(selector, fallback, integer = true) {
  const field = $(selector), value = (integer ? parseInt : parseFloat)(field.value);
  const used = Math.min(Math.max(isFinite(value) ? value : fallback, +field.min), +field.max);
  field.value = used;
  return used;
}

async function exportMedia(kind) {
  if (!state.current) throw new Error("pick a sample first");
  let body = {kind, ...latentOf(state.current), recipe: recipeJSON(), noise_mode: $("#noise-mode").value};
  if (kind !== "png") {
    const frames = numberField("#frames", 16);
    const media = {frames, scale: numberField("#export-scale", 1), fps: numberField("#export-fps", 12, false)};
    if ($("#anim-kind").value === "interpolation") {
      if (!state.a || !state.b || state.a.seed === undefined || state.b.seed === undefined)
        throw new Error("an interpolation walk needs A and B picked from seeds");
      // the walk's frames get the recipe too
      body = {kind, animation: "interpolation", seeds: [state.a.seed, state.b.seed, state.a.seed],
              psi: psi(), ...seedOptions(), recipe: recipeJSON(), noise_mode: $("#noise-mode").value, ...media};
    } else {
      body = {...body, animation: "oscillation", ...media};
      delete body.noise_mode;
    }
  }
  if (kind === "png") {
    const data = await api("export", body);
    download(data.filename, data.data);
    return;
  }
  const response = await runJob("export", body);
  const name = (response.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
  const url = URL.createObjectURL(await response.blob());
  download(name ? name[1] : `animation.${kind}`, url);
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function readDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// An uploaded image is projected into W (or W+) as a job; its result is a w and the noise mode
// holding its projected noise maps, so it is then edited like any sample.
async function projectUpload(file) {
  const body = {data: await readDataURL(file), space: $("#project-space").value,
                steps: parseInt($("#project-steps").value) || 300, crop: $("#project-crop").value};
  const data = await (await runJob("project", body)).json();
  const noise = $("#noise-mode");
  if (![...noise.options].some((o) => o.value === data.noise_mode)) noise.add(new Option(data.noise_mode, data.noise_mode));
  noise.value = data.noise_mode;
  $("#project-target").src = data.target;
  $("#project-image").src = data.image;
  const label = `${file.name} in ${data.space.toUpperCase()} (${data.psnr.toFixed(1)} dB)`;
  $("#project-label").textContent = `${label}; noise: ${data.noise_mode}`;
  $("#project-result").hidden = false;
  select({w: data.w}, label);
}

// ------------------------------------------------------------------ seeds x amounts sweep of the active edit
async function sweep() {
  const recipe = recipeJSON(), t = tab();
  const edit = state.tabs.filter((x) => x.channels.trim()).indexOf(t);  // its place in recipe.edits
  if (!t || edit < 0) throw new Error("a sweep varies the active edit's amount: give it channels first");
  const seeds = parseSeeds($("#sweep-seeds").value);
  const amounts = $("#sweep-amounts").value.split(",").map((a) => a.trim()).filter(Boolean).map(Number);
  if (!seeds.length || !amounts.length || amounts.some((a) => !isFinite(a)))
    throw new Error("a sweep needs seeds (e.g. 1-4) and amounts (e.g. -2,0,2,4)");
  const data = await (await runJob("sweep", {recipe, edit, seeds, amounts, psi: psi(), ...seedOptions(),
                                              noise_mode: $("#noise-mode").value})).json();
  const grid = $("#sweep-grid");
  grid.style.gridTemplateColumns = `auto repeat(${data.amounts.length}, auto)`;
  const cell = (text) => Object.assign(document.createElement("span"), {textContent: text, className: "sweep-label"});
  const cells = [cell(`seed \\ ${t.name || "amount"}`), ...data.amounts.map((a) => cell(`×${a}`))];
  data.seeds.forEach((seed, i) => {
    cells.push(cell(`seed ${seed}`));
    data.amounts.forEach((amount, j) => {
      const img = Object.assign(document.createElement("img"), {src: data.images[i * data.amounts.length + j],
                                                                title: `seed ${seed}, amount ${amount}`});
      img.addEventListener("click", () => { select({seed}, `seed ${seed}`); setAmount(amount); });
      cells.push(img);
    });
  });
  grid.replaceChildren(...cells);
}

// ------------------------------------------------------------------ locators: the edit's region follows the part
async function buildLocator() {
  const t = tab();
  if (!state.current || !t || !t.mask) throw new Error("paint the part to follow on the current image first");
  const name = $("#locator-name").value.trim() || "part";
  const data = await api("locator", {...latentOf(state.current), layer: t.layer, mask: t.mask, name,
                                     noise_mode: $("#noise-mode").value});
  state.locators[name] = data.locator;
  t.locator = name;
  t.anchor = data.anchor;
  showTab();
  render();
}

function showCenter() {
  const center = $("#center").value, info = $("#center-info");
  if (center === "base") {
    info.textContent = state.a ? `toward A (${state.a.seed !== undefined ? "seed " + state.a.seed : "picked w"})`
                               : "pick A first: using the average";
  } else {
    info.textContent = center === "class" ? `toward the class average of label ${$("#label").value}` : "toward the average w";
  }
}

async function start() {
  const info = state.info = await api("info");
  $("#model-info").textContent = `${info.image_shape.join("×")}, ${info.num_layers} layers` +
    (info.provenance && info.provenance.source ? ` — ${info.provenance.source}` : "");
  $("#layer-select").replaceChildren(...info.layers.map((l) =>
    new Option(`${l.name} (${l.height}×${l.width}×${l.channels})`, l.name)));
  $("#layer-select").value = info.layers[Math.floor(info.layers.length / 2)].name;
  $("#noise-mode").replaceChildren(...info.noise_modes.map((m) => new Option(m, m)));
  $("#noise-mode").value = info.noise_mode;
  $("#project-crop").options[1].disabled = !info.projection.face_crop;
  $("#mix-crossover").max = info.num_layers;
  $("#label-control").hidden = !info.label_size;
  $("#center").querySelector("option[value=class]").disabled = !info.label_size;
  $("#export-scale").max = info.max_scale;
  showCenter();
  $("#mix-value").textContent = $("#mix-crossover").value;
  addTab();
  setupDiscover();
  for (const canvas of [$("#paint-image"), $("#paint-map")]) attachPainter(canvas);

  const reloadAll = debounce(() => { loadGallery().catch(ignore); render(); }, 150);
  on("#psi", "input", () => { $("#psi-value").textContent = $("#psi").value; reloadAll(); });
  on("#noise-mode", "change", reloadAll);
  on("#center", "change", () => { showCenter(); reloadAll(); });
  on("#label", "change", () => { showCenter(); reloadAll(); });
  on("#sort-unedited", "change", render);
  on("#show-before", "change", showResult);
  on("#hold-before", "pointerdown", () => { state.holding = true; return showResult(); });
  for (const end of ["pointerup", "pointerleave"])
    on("#hold-before", end, () => { if (state.holding) { state.holding = false; return showResult(); } });
  on("#hide-mask", "change", drawMasks);
  on("#sweep-button", "click", sweep);
  on("#locate-button", "click", buildLocator);
  on("#tab-locator", "change", () => {
    const t = tab(), name = $("#tab-locator").value;
    if (name && !t.mask) { showTab(); throw new Error("a locator moves the edit's painted region: paint one first"); }
    t.locator = name || null;
    if (!name) t.anchor = null;
    else if (!t.anchor) t.anchor = [0.5, 0.5];
    showInEffect();
    render();
  });
  on("#gallery-seed", "change", loadGallery);
  on("#gallery-count", "change", loadGallery);
  on("#gallery-more", "click", () => {
    $("#gallery-seed").value = (parseInt($("#gallery-seed").value) || 0) + (parseInt($("#gallery-count").value) || 8);
    return loadGallery();
  });
  on("#gallery-random", "click", () => { $("#gallery-seed").value = Math.floor(Math.random() * 1e6); return loadGallery(); });

  on("#layer-select", "change", () => {
    const t = tab(), layer = $("#layer-select").value;
    if (t && t.layer !== layer) {
      const [old, now] = [layerInfo(t.layer), layerInfo(layer)];
      if (old.height !== now.height || old.width !== now.width) t.mask = null;
      t.layer = layer;
    }
    state.focus = null;
    drawMasks();
    render();
  });
  on("#sort-select", "change", render);
  on("#maps-image", "click", (e) => {
    const maps = state.maps, grid = $("#maps-image"), rect = grid.getBoundingClientRect();
    const x = (e.clientX - rect.left) / rect.width * grid.naturalWidth;
    const y = (e.clientY - rect.top) / rect.height * grid.naturalHeight;
    const col = Math.floor(x / (maps.layer.width + maps.gap)), row = Math.floor(y / (maps.layer.height + maps.gap));
    const channel = maps.order[row * maps.cols + col];
    if (channel === undefined || col >= maps.cols) return;
    state.focus = channel;
    drawFocus();
    return toggleChannel(channel);
  });
  on("#add-tab", "click", () => { addTab(); render(); });
  on("#remove-tab", "click", () => {
    state.tabs.splice(state.active, 1);
    state.active = Math.min(state.active, state.tabs.length - 1);
    if (!state.tabs.length) addTab(); else showTab();
    render();
  });
  on("#tab-name", "input", () => { tab().name = $("#tab-name").value; showTab(); });
  on("#tab-enabled", "change", () => { tab().enabled = $("#tab-enabled").checked; showInEffect(); render(); });
  on("#channels", "change", async () => {
    const t = tab();
    try {
      const data = await api("channels", {layer: t.layer, text: $("#channels").value});
      t.channels = data.text;
    } finally {
      // the field shows the channels in effect, also after a refused list (only this field:
      // the others may hold what the user is typing meanwhile)
      $("#channels").value = t.channels;
      showInEffect();
    }
    drawMaps();
    render();
  });
  on("#amount", "input", () => setAmount(parseFloat($("#amount").value), true));
  on("#amount-value", "change", () => setAmount(parseFloat($("#amount-value").value)));
  on("#clear-mask", "click", () => { tab().mask = null; drawMasks(); render(); });

  on("#export-recipe", "click", () => {
    const blob = new Blob([JSON.stringify(recipeJSON(), null, 1)], {type: "application/json"});
    const url = URL.createObjectURL(blob);
    download(($("#recipe-name").value || "recipe").replace(/[^\w.-]+/g, "_") + ".json", url);
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
  on("#import-recipe", "change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const data = await api("recipe", {recipe: await file.text()});
    e.target.value = "";
    setRecipe(data.recipe);
  });
  on("#import-png", "change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const data = await api("load_png", {data: await readDataURL(file)});
    e.target.value = "";
    if (!data.w) throw new Error("this PNG has no latent in it");
    if (data.recipe) setRecipe(data.recipe);
    select({w: data.w}, file.name);
  });
  on("#apply-button", "click", async () => {
    const seeds = parseSeeds($("#apply-seeds").value);
    const data = await (await runJob("apply_to_seeds", {recipe: recipeJSON(), seeds, psi: psi(), ...seedOptions(),
                                                        noise_mode: $("#noise-mode").value})).json();
    $("#seed-grid").replaceChildren(...data.images.map((src, i) => {
      const img = Object.assign(document.createElement("img"), {src, title: `seed ${seeds[i]}`});
      img.dataset.seed = seeds[i];
      img.addEventListener("click", () => select({seed: seeds[i]}, `seed ${seeds[i]}`));
      return img;
    }));
  });
  on("#project-file", "change", (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    return file ? projectUpload(file) : undefined;
  });
  on("#export-png", "click", () => exportMedia("png"));
  on("#export-gif", "click", () => exportMedia("gif"));
  on("#export-mp4", "click", () => exportMedia("mp4"));

  on("#set-a", "click", () => { pick("a"); showCenter(); if ($("#center").value === "base") reloadAll(); });
  on("#set-b", "click", () => pick("b"));
  const interpolate = debounce(() => showLatent("interpolate", {
    t: parseFloat($("#interp-t").value), space: $("#interp-space").value}, "#interp-t").catch(
    (e) => showError(e.message, "#interp-t")), 120);
  on("#interp-t", "input", interpolate);
  on("#interp-space", "change", interpolate);
  const mix = debounce(() => showLatent("mix", {crossover: parseInt($("#mix-crossover").value)}, "#mix-crossover").catch(
    (e) => showError(e.message, "#mix-crossover")), 120);
  on("#mix-crossover", "input", () => { $("#mix-value").textContent = $("#mix-crossover").value; mix(); });
  on("#latent-edit", "click", () => { if (state.latentW) select({w: state.latentW}, "from A and B"); });
  on("#propose", "click", propose);
  on("#make-direction", "click", async () => {
    if (!state.a || !state.b) throw new Error("pick A and B first");
    const data = await api("direction", {with: [latentOf(state.a)], without: [latentOf(state.b)],
                                         name: $("#direction-name").value});
    state.directions.push(data.direction);
    showDirections();
    render();
  });
  await loadGallery();
}

window.addEventListener("DOMContentLoaded", () => start().catch(ignore));
