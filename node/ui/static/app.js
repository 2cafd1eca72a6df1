// The node's dashboard (node/ui/routes.py says how it is served and secured).
// Plain JavaScript, no library: the token comes from the login link's fragment and goes
// in an Authorization header; the node's state arrives as Server-Sent Events read with
// fetch (EventSource cannot send a header). Every value from the node is set with
// textContent, never parsed as HTML.
"use strict";

const TOKEN_KEY = "pictor-api-token";
const MAX_THUMBS = 48;
const state = { doc: null, upload: null, quote: null, view: null, thumbs: new Map() };

function $(sel, root) { return (root || document).querySelector(sel); }
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// ---- token --------------------------------------------------------------------------
function takeTokenFromLink() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + (params.get("view") ? "#" + params.get("view") : ""));
  }
}
function token() { return sessionStorage.getItem(TOKEN_KEY); }
function authHeaders(extra) { return Object.assign({ Authorization: "Bearer " + token() }, extra || {}); }

async function api(method, path, body, headers) {
  const init = { method, headers: authHeaders(headers) };
  if (body !== undefined) {
    init.body = body instanceof Blob ? body : JSON.stringify(body);
    if (!(body instanceof Blob)) init.headers["Content-Type"] = "application/json";
  }
  const r = await fetch(path, init);
  if (r.status === 401) { showLogin(); throw new Error("the node refused the token: open the link `pictor ui` prints"); }
  const data = (r.headers.get("content-type") || "").includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error(detail(data) || r.status + " " + r.statusText);
  return data;
}
function detail(data) {
  if (!data || data.detail === undefined) return "";
  if (typeof data.detail === "string") return data.detail;
  return data.detail.map(e => (e.loc || []).slice(1).join(".") + ": " + e.msg).join("; ");
}
function showError(err) {
  const box = $("#error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}
function showLogin() { $("#login").hidden = false; for (const v of document.querySelectorAll(".view")) v.hidden = true; }

// ---- live stream ----------------------------------------------------------------------
async function stream() {
  const live = $("#live");
  for (;;) {
    try {
      const r = await fetch("/v1/ui/events", { headers: authHeaders() });
      if (r.status === 401) { showLogin(); live.textContent = "signed out"; live.className = "pill bad"; return; }
      if (!r.ok) throw new Error("events: " + r.status);
      live.textContent = "live"; live.className = "pill ok";
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const data = event.split("\n").filter(l => l.startsWith("data:")).map(l => l.slice(5)).join("\n");
          if (data) render(JSON.parse(data));
        }
      }
    } catch (err) {
      live.textContent = "reconnecting…"; live.className = "pill bad";
    }
    await new Promise(resolve => setTimeout(resolve, 2000));
  }
}

// ---- views ----------------------------------------------------------------------------
function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + view;
  if (location.hash !== "#" + view) history.replaceState(null, "", "#" + view);
}
function defaultView(doc) {
  const roles = doc.node.roles;
  if (roles.includes("worker")) return "worker";
  if (roles.includes("checker")) return "checker";
  return "render";
}
function facts(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v, id] of pairs) {
    dl.append(el("dt", k));
    const dd = el("dd", v);
    if (id) dd.id = id;
    dl.append(dd);
  }
}
function rows(table, list, cells) {
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const item of list) {
    const tr = el("tr");
    for (const c of cells(item)) tr.append(c instanceof Node ? c : el("td", c));
    body.append(tr);
  }
}
function short(id) { return id.slice(0, 16); }
function ago(ms, now) { const s = Math.max(0, Math.round((now - ms) / 1000)); return s < 120 ? s + " s ago" : Math.round(s / 60) + " min ago"; }

function render(doc) {
  state.doc = doc;
  $("#node-name").textContent = doc.node.name + " · " + doc.node.roles.join(", ");
  if (!state.view) show(["cloud", "render", "worker", "checker"].includes(location.hash.slice(1)) ? location.hash.slice(1) : defaultView(doc));
  renderCloud(doc); renderJobs(doc); renderWorker(doc); renderChecker(doc);
}

function gpuRows(table, gpus) {
  rows(table, gpus.gpus, g => [g.index, g.model, g.utilization_pct == null ? "-" : g.utilization_pct + " %",
    g.temperature_c == null ? "-" : g.temperature_c + " °C",
    (g.vram_used_mib == null ? "?" : g.vram_used_mib) + " / " + g.vram_mib + " MiB",
    g.power_w == null ? "-" : Math.round(g.power_w) + " W"]);
}

function renderCloud(doc) {
  const n = doc.node, net = doc.network;
  facts($("#node-facts"), [["peer id", n.peer_id], ["roles", n.roles.join(", ")],
    ["connected peers", n.connected_peers], ["uptime", n.uptime_s + " s"],
    ["payment address", n.payment_address], ["chain", n.has_chain ? "configured" : "none (nothing is paid)"],
    ["renderer", n.renderer_build]]);
  facts($("#network-facts"), [["other workers", net.workers, "net-workers"], ["other checkers", net.checkers, "net-checkers"],
    ["cheapest ask", net.cheapest_ask_per_ru ? net.cheapest_ask_per_ru.eth + " per render unit" : "-"],
    ["free slots", net.free_slots]]);
  $("#gpu-detail").textContent = doc.gpus.detail;
  gpuRows($("#gpus"), doc.gpus);
}

function renderWorker(doc) {
  const w = doc.worker, e = doc.earnings;
  $("#worker-off").hidden = !!w;
  facts($("#worker-facts"), w ? [["frames rendered", w.rendered, "worker-rendered"], ["rendering now", w.rendering],
    ["results submitted", w.submitted], ["failed", w.failed], ["awards declined", w.declined],
    ["ask", w.price_per_ru.eth + " per render unit"], ["device", w.device_class]] : []);
  rows($("#tasks"), w ? w.tasks : [], t => [short(t.job_id), t.frame, t.price.eth,
    (t.progress_permille / 10).toFixed(1) + " %", t.lease_left_s + " s"]);
  facts($("#earnings"), e ? [["paid on chain", e.paid.eth, "earned-paid"], ["owed (vouchers held)", e.owed.eth, "earned-owed"]]
    : [["earnings", doc.node.has_chain ? "-" : "nothing can be paid: no chain configured (chain_rpc_url)"]]);
  const vouchers = e ? e.jobs : [];
  const cells = v => [short(v.job_id), v.requester, v.promised.eth, v.paid.eth];
  rows($("#vouchers"), vouchers, cells);
  rows($("#fees"), vouchers, cells);
  gpuRows($("#worker-gpus"), doc.gpus);
}

function renderChecker(doc) {
  const c = doc.checker;
  $("#checker-off").hidden = !!c;
  const now = Date.now();
  facts($("#checker-facts"), c ? [["frames checked", c.checked, "checker-checked"],
    ["checks refused (pay not secured)", c.refused], ["fee", (c.fee_bps / 100) + " % of the frame price"],
    ["fees paid on chain", doc.earnings ? doc.earnings.paid.eth : "-"]] : []);
  rows($("#verdicts"), c ? c.verdicts : [], v => [short(v.job_id), v.frame, v.worker,
    el("td", v.passed ? "passed" : "rejected", v.passed ? "passed" : "rejected"), v.tiles, ago(v.timestamp_ms, now)]);
}

// ---- jobs -----------------------------------------------------------------------------
function renderJobs(doc) {
  const box = $("#jobs");
  $("#no-jobs").hidden = doc.jobs.length > 0;
  const seen = new Set();
  for (const job of doc.jobs) {
    seen.add(job.job_id);
    let card = box.querySelector(`.job[data-job="${job.job_id}"]`);
    if (!card) card = jobCard(job);
    box.append(card);  // in the document's order, newest first (moving a card keeps its thumbnails)
    updateJob(card, job);
  }
  for (const card of box.querySelectorAll(".job")) if (!seen.has(card.dataset.job)) card.remove();
}

function jobCard(job) {
  const card = el("div", null, "job");
  card.dataset.job = job.job_id;
  const head = el("div", null, "head");
  head.append(el("code", short(job.job_id)), el("span", "", "pill status"), el("span", "", "counts"),
    el("span", "", "money muted"));
  const cancel = el("button", "Cancel", "cancel");
  cancel.type = "button";
  cancel.addEventListener("click", () => api("POST", `/v1/client/jobs/${job.job_id}/cancel`).then(() => showError(null), showError));
  const zip = el("button", "Download all", "download-zip");
  zip.type = "button";
  zip.addEventListener("click", () => download(`/v1/ui/jobs/${job.job_id}/frames.zip`, short(job.job_id) + "-frames.zip"));
  const refund = el("button", "Refund", "refund");
  refund.type = "button";
  refund.title = "Reclaim the unspent escrow (possible after the deadline + the contract's grace period)";
  refund.addEventListener("click", () => api("POST", `/v1/client/jobs/${job.job_id}/refund`).then(() => showError(null), showError));
  head.append(cancel, zip, refund);
  const bar = el("div", null, "bar"); bar.append(el("div"));
  card.append(head, bar, el("div", null, "stalled"), el("div", null, "thumbs"));
  return card;
}

function updateJob(card, job) {
  const status = job.outcome || job.state;
  const pill = $(".status", card);
  pill.textContent = status;
  pill.className = "pill status " + (job.outcome === "completed" ? "ok" : job.outcome ? "bad" : "");
  $(".counts", card).textContent = `${job.frames_accepted} / ${job.frames_total} frames`;
  $(".money", card).textContent = `spent ${job.spent.eth} of ${job.budget.eth} escrowed` +
    (job.refunded ? `, refunded ${job.refund.eth}` : "");
  $(".bar > div", card).style.width = (100 * job.frames_accepted / Math.max(1, job.frames_total)) + "%";
  $(".cancel", card).hidden = job.outcome !== null;
  $(".download-zip", card).hidden = job.ready.length === 0;
  $(".refund", card).hidden = !(job.outcome && job.escrowed && !job.refunded && job.spent.wei !== job.budget.wei);
  const stalled = $(".stalled", card);
  stalled.replaceChildren(...job.stalled.map(s => el("div", s)));
  const thumbs = $(".thumbs", card);
  for (const frame of job.ready.slice(0, MAX_THUMBS)) {
    if (thumbs.querySelector(`img[data-frame="${frame}"]`)) continue;
    const img = el("img");
    img.dataset.frame = frame;
    img.alt = "frame " + frame;
    img.title = "frame " + frame + " (click to download)";
    img.addEventListener("click", () => download(`/v1/ui/jobs/${job.job_id}/frames/${frame}?download=true`,
      `${short(job.job_id)}-frame_${String(frame).padStart(4, "0")}.png`));
    thumbs.append(img);
    loadThumb(img, `/v1/ui/jobs/${job.job_id}/frames/${frame}`);
  }
}

async function loadThumb(img, path) {
  try {
    const r = await fetch(path, { headers: authHeaders() });
    if (!r.ok) { img.remove(); return; }
    img.src = URL.createObjectURL(await r.blob());
  } catch (err) { img.remove(); }
}

async function download(path, name) {
  try {
    const r = await fetch(path, { headers: authHeaders() });
    if (!r.ok) throw new Error("download: " + r.status);
    const url = URL.createObjectURL(await r.blob());
    const a = el("a"); a.href = url; a.download = name;
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) { showError(err); }
}

// ---- submit ---------------------------------------------------------------------------
function parseFrames(text) {
  const frames = [];
  for (const part of text.split(",").map(s => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) throw new Error(`frames: "${part}" is not a frame or a range like 1-4`);
    const lo = Number(m[1]), hi = Number(m[2] || m[1]);
    if (hi < lo || hi - lo > 10000) throw new Error(`frames: bad range ${part}`);
    for (let f = lo; f <= hi; f++) frames.push(f);
  }
  if (!frames.length) throw new Error("frames: give at least one frame");
  return frames;
}
function ethToWei(text) {
  const m = /^\s*(\d*)(?:\.(\d{0,18}))?\s*(?:eth)?\s*$/i.exec(text);
  if (!m || (!m[1] && !m[2])) throw new Error("max price: an amount in ETH, like 0.11");
  return (BigInt(m[1] || "0") * 10n ** 18n + BigInt((m[2] || "").padEnd(18, "0"))).toString();
}
function overrides() {
  const out = {};
  const x = $("#res-x").value.trim(), y = $("#res-y").value.trim(), s = $("#samples").value.trim();
  if (x || y) out.resolution = [Number(x), Number(y)];
  if (s) out.samples = Number(s);
  return out;
}

async function upload(file) {
  showError(null);
  $("#drop-text").textContent = "Uploading " + file.name + "…";
  try {
    state.upload = await api("POST", "/v1/ui/scenes?name=" + encodeURIComponent(file.name), file,
      { "Content-Type": "application/octet-stream" });
    $("#scene-name").textContent = state.upload.name;
    $("#scene-size").textContent = (state.upload.size_bytes / 1024).toFixed(0) + " KiB";
    $("#job-form").hidden = false;
    $("#quote").hidden = true;
  } catch (err) { showError(err); }
  $("#drop-text").textContent = "Drop another .blend here, or click to choose one";
}

async function estimate() {
  showError(null);
  const button = $("#estimate");
  button.disabled = true; button.textContent = "Estimating…";
  try {
    const frames = parseFrames($("#frames").value);
    const q = await api("POST", "/v1/ui/quote", Object.assign({ scene: state.upload.scene, frames: frames.length }, overrides()));
    state.quote = q;
    const p = q.proposal;
    const pairs = [["render units", q.ru_per_frame + " per frame"],
      ["settings", `${q.settings.engine} ${q.settings.resolution.join("×")}, ${q.settings.samples} samples`],
      ["checkers", q.checkers]];
    if (p) {
      pairs.push(["workers", p.workers + " at or below the proposed price; cheapest ask " + p.cheapest_ask.eth + " per frame"],
        ["estimate", "at most " + p.estimate.eth + " for " + frames.length + " frame(s), checks included", "quote-estimate"],
        ["escrow", p.budget.eth + " held until the deadline; the unspent part is refunded"]);
      $("#max-price").value = p.max_price_per_frame.eth.replace(" ETH", "");
    } else {
      pairs.push(["workers", "no worker runs " + q.renderer_build + " yet: no price would draw a bid"]);
    }
    facts($("#quote-facts"), pairs);
    $("#quote").hidden = false;
  } catch (err) { showError(err); }
  button.disabled = false; button.textContent = "Estimate";
}

async function submit() {
  showError(null);
  const button = $("#submit");
  button.disabled = true; button.textContent = "Submitting…";
  try {
    const body = Object.assign({
      scene: state.upload.scene, frames: parseFrames($("#frames").value),
      max_price_wei_per_frame: ethToWei($("#max-price").value),
      out_dir: state.upload.out_dir + "-" + Date.now().toString(36),
    }, overrides());
    const job = await api("POST", "/v1/client/jobs", body);
    $("#quote").hidden = true;
    if (state.doc) render(Object.assign({}, state.doc, { jobs: [{ ...placeholder(job) }, ...state.doc.jobs.filter(j => j.job_id !== job.job_id)] }));
  } catch (err) { showError(err); }
  button.disabled = false; button.textContent = "Submit and escrow";
}
function placeholder(job) {
  const zero = { wei: "0", eth: "0 ETH" };
  return { job_id: job.job_id, state: job.state, outcome: job.outcome, frames_total: job.frames_total,
    frames_accepted: job.frames_accepted, ready: [], stalled: [], spent: zero, budget: zero, refund: zero,
    refunded: false };
}

// ---- start ----------------------------------------------------------------------------
function start() {
  takeTokenFromLink();
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
  const drop = $("#drop");
  drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", e => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });
  $("#file").addEventListener("change", e => { if (e.target.files.length) upload(e.target.files[0]); });
  $("#estimate").addEventListener("click", estimate);
  $("#submit").addEventListener("click", submit);
  if (!token()) { showLogin(); $("#live").textContent = "signed out"; return; }
  stream();
}
document.addEventListener("DOMContentLoaded", start);
