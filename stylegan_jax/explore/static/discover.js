// Directions found without labels (SeFa, GANSpace: POST /api/factorize) added as direction sliders,
// and the statistics of the shown layer's maps (render's maps.stats) beside the feature maps.
import {$, api, state} from "./core.js";
import {render, showDirections} from "./editor.js";

// The layer range is shown first to last (both included); the API takes [start, stop).
export function setupDiscover() {
  const last = state.info.num_layers - 1;
  for (const id of ["#discover-first", "#discover-last"]) $(id).max = last;
  $("#discover-last").value = last;
  $("#discover-find").addEventListener("click", () => findDirections().catch(() => {}));
}

async function findDirections() {
  const first = parseInt($("#discover-first").value) || 0;
  const last = parseInt($("#discover-last").value);
  const body = {method: $("#discover-method").value, layers: [first, (isNaN(last) ? first : last) + 1],
                k: parseInt($("#discover-k").value) || 3};
  const data = await api("factorize", body);
  // Each starts at strength 0 (no change) until its slider moves.
  state.directions.push(...data.directions);
  showDirections();
  render();
}

export function showStats(maps) {
  const table = $("#map-stats");
  if (!maps || !maps.stats) { table.replaceChildren(); return; }
  const {channels, unedited, edited} = maps.stats, keys = ["mean", "std", "min", "max"];
  const row = (cells, tag = "td") => {
    const tr = document.createElement("tr");
    tr.append(...cells.map((c) => Object.assign(document.createElement(tag), {textContent: c})));
    return tr;
  };
  const caption = Object.assign(document.createElement("caption"), {
    textContent: `${maps.layer.name}, ${channels ? "channels " + channels.join(",") : "all channels"}`});
  table.replaceChildren(caption, row(["", ...keys], "th"),
    ...[["unedited", unedited], ["edited", edited]].map(([name, s]) =>
      row([name, ...keys.map((k) => s[k].toFixed(3))])));
}
