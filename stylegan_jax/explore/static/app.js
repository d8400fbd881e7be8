// Two-image tools (interpolation, style mixing, proposals, attribute vectors), exports, wiring.
import {$, api, debounce, download, ignore, latentOf, layerInfo, on, parseSeeds, psi, recipeJSON, runJob, state,
        tab} from "./core.js";
import {addTab, attachPainter, drawFocus, drawMasks, loadGallery, render, select, setAmount, setRecipe,
        showDirections, showTab, toggleChannel} from "./editor.js";
import {setupDiscover} from "./discover.js";

// ------------------------------------------------------------------ two images: interpolation, mixing, proposals
function pick(slot) {
  if (!state.current) return;
  state[slot] = {...state.current};
  $("#pick-" + slot).src = $("#result-image").src;
}

async function showLatent(name, body) {
  if (!state.a || !state.b) { $("#error").textContent = "pick A and B first"; return; }
  const data = await api(name, {a: latentOf(state.a), b: latentOf(state.b), ...body});
  $("#latent-image").src = data.image;
  state.latentW = data.w;
}

async function propose() {
  const t = tab();
  if (!state.a || !state.b || !t || !t.mask) {
    $("#error").textContent = "pick A and B and paint a region first";
    return;
  }
  const data = await api("propose", {a: latentOf(state.a), b: latentOf(state.b), layer: t.layer,
                                     mask_a: t.mask, top_k: parseInt($("#propose-k").value) || 8});
  addTab({...data.edit, name: `proposed ${state.tabs.length + 1}`});
  render();
}

// ------------------------------------------------------------------ exports
async function exportMedia(kind) {
  if (!state.current) return;
  let body = {kind, ...latentOf(state.current), recipe: recipeJSON(), noise_mode: $("#noise-mode").value};
  if (kind !== "png") {
    const frames = parseInt($("#frames").value) || 16;
    if ($("#anim-kind").value === "interpolation") {
      if (!state.a || !state.b || state.a.seed === undefined || state.b.seed === undefined) {
        $("#error").textContent = "an interpolation walk needs A and B picked from seeds";
        return;
      }
      body = {kind, animation: "interpolation", seeds: [state.a.seed, state.b.seed, state.a.seed],
              psi: psi(), frames};
    } else {
      body = {...body, animation: "oscillation", frames};
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
  $("#mix-value").textContent = $("#mix-crossover").value;
  addTab();
  setupDiscover();
  for (const canvas of [$("#paint-image"), $("#paint-map")]) attachPainter(canvas);

  const reloadAll = debounce(() => { loadGallery().catch(ignore); render(); }, 150);
  on("#psi", "input", () => { $("#psi-value").textContent = $("#psi").value; reloadAll(); });
  on("#noise-mode", "change", reloadAll);
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
  on("#tab-enabled", "change", () => { tab().enabled = $("#tab-enabled").checked; render(); });
  on("#channels", "change", async () => {
    const t = tab();
    const data = await api("channels", {layer: t.layer, text: $("#channels").value});
    t.channels = data.text;
    showTab();
    render();
  });
  on("#amount", "input", () => setAmount(parseFloat($("#amount").value)));
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
    if (!data.w) { $("#error").textContent = "this PNG has no latent in it"; return; }
    if (data.recipe) setRecipe(data.recipe);
    select({w: data.w}, file.name);
  });
  on("#apply-button", "click", async () => {
    const seeds = parseSeeds($("#apply-seeds").value);
    const data = await (await runJob("apply_to_seeds", {recipe: recipeJSON(), seeds, psi: psi(),
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

  on("#set-a", "click", () => pick("a"));
  on("#set-b", "click", () => pick("b"));
  const interpolate = debounce(() => showLatent("interpolate", {
    t: parseFloat($("#interp-t").value), space: $("#interp-space").value}).catch(ignore), 120);
  on("#interp-t", "input", interpolate);
  on("#interp-space", "change", interpolate);
  const mix = debounce(() => showLatent("mix", {crossover: parseInt($("#mix-crossover").value)}).catch(ignore), 120);
  on("#mix-crossover", "input", () => { $("#mix-value").textContent = $("#mix-crossover").value; mix(); });
  on("#latent-edit", "click", () => { if (state.latentW) select({w: state.latentW}, "from A and B"); });
  on("#propose", "click", propose);
  on("#make-direction", "click", async () => {
    if (!state.a || !state.b) { $("#error").textContent = "pick A and B first"; return; }
    const data = await api("direction", {with: [latentOf(state.a)], without: [latentOf(state.b)],
                                         name: $("#direction-name").value});
    state.directions.push(data.direction);
    showDirections();
    render();
  });
  await loadGallery();
}

window.addEventListener("DOMContentLoaded", () => start().catch(ignore));
