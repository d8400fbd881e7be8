"""The review grid's HTML/JS page (served by stylegan_jax/prep/review.py; kept in Python so it
ships with the package)."""

REVIEW_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Review prepared dataset</title>
<style>
 body { font-family: sans-serif; margin: 0; background: #222; color: #eee; }
 header { position: sticky; top: 0; background: #333; padding: 8px 12px; display: flex; gap: 12px;
          align-items: center; z-index: 1; }
 #grid { display: flex; flex-wrap: wrap; gap: 4px; padding: 8px; }
 .cell { position: relative; cursor: pointer; border: 3px solid transparent; }
 .cell img { display: block; height: var(--thumb, 128px); image-rendering: auto; }
 .cell.bad { border-color: #e33; }
 .cell.bad img { opacity: 0.35; }
 .cell.bad::after { content: "\\2716"; position: absolute; top: 2px; right: 6px; color: #e33; font-size: 20px; }
 button, input { font-size: 14px; }
</style></head>
<body>
<header>
 <button id="prev" title="previous page (left arrow)">&larr;</button>
 <span>page <input id="page" type="number" min="1" style="width: 5em"> / <span id="pages"></span></span>
 <button id="next" title="next page (right arrow)">&rarr;</button>
 <label>size <input id="thumb" type="range" min="64" max="512" value="128"></label>
 <span id="status"></span>
</header>
<div id="grid"></div>
<script>
let info = null, page = 0;
const $ = (id) => document.getElementById(id);

function status() {
  $("status").textContent = info.num_examples + " images, " + info.marked +
    " marked bad (saved to " + info.marks_file + "); click an image to mark or unmark it";
}

async function load(number) {
  page = Math.max(0, Math.min(info.num_pages - 1, number));
  const reply = await (await fetch("/api/page?page=" + page)).json();
  $("page").value = page + 1;
  const grid = $("grid");
  grid.replaceChildren();
  for (const item of reply.items) {
    const cell = document.createElement("div");
    cell.className = "cell" + (item.bad ? " bad" : "");
    cell.title = item.key;
    const img = document.createElement("img");
    img.src = "/api/image?index=" + item.index;
    img.loading = "lazy";
    cell.appendChild(img);
    cell.onclick = () => toggle(item, cell);
    grid.appendChild(cell);
  }
  window.scrollTo(0, 0);
}

async function toggle(item, cell) {
  const reply = await fetch("/api/mark", {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify({key: item.key, bad: !item.bad})});
  if (!reply.ok) { $("status").textContent = "could not save: " + (await reply.text()); return; }
  const saved = await reply.json();
  item.bad = saved.bad;
  info.marked = saved.marked;
  cell.classList.toggle("bad", item.bad);
  status();
}

async function start() {
  info = await (await fetch("/api/info")).json();
  $("pages").textContent = info.num_pages;
  $("prev").onclick = () => load(page - 1);
  $("next").onclick = () => load(page + 1);
  $("page").onchange = () => load(parseInt($("page").value, 10) - 1);
  $("thumb").oninput = () => document.body.style.setProperty("--thumb", $("thumb").value + "px");
  document.onkeydown = (event) => {
    if (event.target.tagName === "INPUT") return;
    if (event.key === "ArrowLeft") load(page - 1);
    if (event.key === "ArrowRight") load(page + 1);
  };
  status();
  load(0);
}
start();
</script>
</body></html>
"""
