// The explorer page (ES modules, no build step): core.js = shared state and plumbing, editor.js =
// gallery, rendering, painting and edit tabs, app.js = two-image tools, exports and wiring. It talks
// to the JSON API of stylegan_jax/explore/server.py (api_models.py has each endpoint's fields; /docs shows them).

export const $ = (selector) => document.querySelector(selector);
export const state = {
  info: null,        // GET /api/info
  current: null,     // the edited image's latent: {seed} (psi from the slider) or {w}
  tabs: [],          // edits (recipe JSON form); mask null = the whole map
  active: -1,
  directions: [], locators: {},  // carried from loaded recipes
  maps: null,        // the last render's "maps"
  focus: null,       // focused channel
  a: null, b: null,  // picked latents
  latentW: null,     // w of the last interpolation / mix
  unedited: null,    // {key, image}: the current latent without the recipe (before/after)
  lastControl: null, // the control of the latest user action: render errors are shown there
  seq: 0, busy: 0,
};

// ------------------------------------------------------------------ plumbing
// Errors show in the header's #error unless a call passes its own show(message, error) (the guided
// panel, guide.js, shows each beside the control that caused it); "" clears. A failed call's
// error carries the reply's per-field "detail" when there is one.
const showInHeader = (message) => { $("#error").textContent = message; };

export async function api(name, body, show = showInHeader) {
  const options = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"},
                                              body: JSON.stringify(body)};
  setBusy(1);
  try {
    const response = await fetch("/api/" + name, options);
    const data = await response.json();
    if (!response.ok) throw Object.assign(new Error(data.error || response.statusText), {detail: data.detail});
    show("");
    return data;
  } catch (e) {
    show(e.message, e);
    throw e;
  } finally {
    setBusy(-1);
  }
}

// #status reads "ready" only when no request is in flight and no debounced call is waiting.
export function setBusy(delta) {
  state.busy += delta;
  $("#status").textContent = state.busy > 0 ? "working…" : "ready";
}

// Errors are shown next to the control that caused them (a span after its label, id
// "<control id>-error") as well as in the header; the control's next action clears them.
export function showError(message, where) {
  $("#error").textContent = message;
  const control = where && (typeof where === "string" ? $(where) : where);
  if (!control || !control.id) return;
  let span = document.getElementById(control.id + "-error");
  if (!span) {
    span = Object.assign(document.createElement("span"), {id: control.id + "-error", className: "field-error"});
    span.setAttribute("role", "alert");
    (control.closest("label") || control).insertAdjacentElement("afterend", span);
  }
  span.textContent = message;
  if (span.getBoundingClientRect().bottom > window.innerHeight || span.getBoundingClientRect().top < 0)
    span.scrollIntoView({block: "nearest"});
}

export function clearError(where) {
  const control = where && (typeof where === "string" ? $(where) : where);
  const span = control && control.id && document.getElementById(control.id + "-error");
  if (span) span.textContent = "";
}

// fn at most every `ms` while calls keep coming (a slider being dragged), one call in flight at a
// time (fn returns a promise), and once more after the last call.
export function throttle(fn, ms) {
  let last = 0, timer = null, running = false, again = false;
  const go = async () => {
    timer = null; running = true; again = false; last = Date.now();
    try { await fn(); } catch (e) { /* shown by api() */ } finally {
      running = false;
      if (again) schedule(); else setBusy(-1);
    }
  };
  const schedule = () => { timer = setTimeout(go, Math.max(0, ms - (Date.now() - last))); };
  return () => {
    if (running) { again = true; return; }
    if (timer !== null) return;
    setBusy(1);
    schedule();
  };
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    if (timer === null) setBusy(1); else clearTimeout(timer);
    timer = setTimeout(() => { timer = null; setBusy(-1); fn(...args); }, ms);
  };
}

// Long work (exports, seed grids) runs as a job on the server: POST /api/jobs/<kind> starts it,
// GET /api/jobs/<id> reports progress (shown in #job-progress, or the given progress element, with
// a "cancel" button after it that sends DELETE /api/jobs/<id>), the result is fetched when done.
// Returns the result's Response; a cancelled job throws "<kind> cancelled".
function cancelButtonAfter(progress) {
  let button = document.getElementById(progress.id + "-cancel");
  if (!button) {
    button = Object.assign(document.createElement("button"), {id: progress.id + "-cancel", textContent: "cancel", hidden: true});
    progress.insertAdjacentElement("afterend", button);
  }
  return button;
}

export async function runJob(kind, body, {show = showInHeader, progress = $("#job-progress")} = {}) {
  const job = await api("jobs/" + kind, body, show);
  const cancel = cancelButtonAfter(progress);
  cancel.onclick = () => { cancel.disabled = true; fetch("/api/jobs/" + job.id, {method: "DELETE"}); };
  cancel.disabled = false;
  setBusy(1);
  try {
    let state = job;
    while (state.status === "queued" || state.status === "running") {
      progress.hidden = cancel.hidden = false;
      progress.value = state.progress;
      progress.title = `${kind}: ${state.done} of ${state.total}`;
      await new Promise((resolve) => setTimeout(resolve, 250));
      state = await (await fetch("/api/jobs/" + job.id)).json();
    }
    if (state.status === "cancelled") throw new Error(`${kind} cancelled`);
    const response = await fetch("/api/jobs/" + job.id + "/result");
    if (!response.ok) throw new Error((await response.json()).error || response.statusText);
    show("");
    return response;
  } catch (e) {
    show(e.message, e);
    throw e;
  } finally {
    progress.hidden = cancel.hidden = true;
    setBusy(-1);
  }
}

export function download(filename, url) {
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
}

export const psi = () => parseFloat($("#psi").value);
// A seed's latent: its own psi (picked A and B keep theirs) or the slider's, a conditional model's label, and the truncation center
// chosen in #center ("base" = the picked A image).
export function latentOf(x, withCenter = true) {
  if (x.seed === undefined) return {w: x.w};
  return {seed: x.seed, psi: x.psi ?? psi(), ...seedOptions(withCenter)};
}
export function seedOptions(withCenter = true) {
  const out = {}, info = state.info;
  if (info && info.label_size) out.label = labelVector();
  const center = $("#center") ? $("#center").value : "average";
  if (withCenter && center === "class") out.center = "class";
  if (withCenter && center === "base" && state.a) out.center = latentOf(state.a, false);
  return out;
}
export function labelVector() {
  const size = state.info.label_size, text = $("#label").value.trim();
  if (/^\d+$/.test(text)) return Array.from({length: size}, (_, i) => (i === +text ? 1 : 0));
  return text.split(",").map(Number);
}
export const layerInfo = (name) => state.info.layers.find((l) => l.name === name);
export const tab = () => state.tabs[state.active];
export const ignore = () => {};  // errors are already shown in #error

export function recipeJSON() {
  return {format: "stylegan_jax.recipe", version: 1, name: $("#recipe-name").value,
          locators: state.locators, directions: state.directions,
          edits: state.tabs.filter((t) => t.channels.trim()).map((t) => ({...t}))};
}

export function parseSeeds(text) {
  const seeds = [];
  for (const item of text.split(",")) {
    const m = item.trim().match(/^(\d+)(?:\s*-\s*(\d+))?$/);
    if (!m) continue;
    for (let s = +m[1]; s <= +(m[2] ?? m[1]) && seeds.length < state.info.max_seeds; s++) seeds.push(s);
  }
  return seeds;
}

export function on(selector, event, handler) {
  $(selector).addEventListener(event, (...args) => {
    state.lastControl = selector;
    clearError(selector);
    let result;
    try {
      result = handler(...args);
    } catch (e) {
      showError(e.message, selector);
      return;
    }
    if (result && result.catch) result.catch((e) => showError(e.message, selector));
  });
}

