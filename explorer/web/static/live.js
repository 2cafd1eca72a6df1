// Live updates without a reload: poll the page's JSON twin (data-live-url on <body>)
// and copy fields into elements marked data-live="field"; refresh inline SVG charts
// (data-live-svg). No framework, no CDN: the explorer must work offline.
(function () {
  "use strict";
  var body = document.body;
  var url = body.getAttribute("data-live-url");
  if (!url) { return; }
  var every = parseInt(body.getAttribute("data-live-ms") || "3000", 10);
  var status = document.getElementById("live-status");

  function field(data, path) {
    return path.split(".").reduce(function (v, k) { return v == null ? v : v[k]; }, data);
  }

  // Wei (decimal text) as ether with BigInt, the same text as the server's eth filter:
  // exact up to 6 decimals, else rounded half up and marked "≈". Never a float.
  function eth(wei) {
    var v; try { v = BigInt(String(wei)); } catch (e) { return String(wei); }
    var unit = BigInt("1000000000000000000"), step = BigInt("1000000000000");
    var whole = v / unit, digits = (v % unit).toString().padStart(18, "0").replace(/0+$/, "");
    var mark = "";
    if (digits.length > 6) {
      var r = (v + step / BigInt(2)) / step * step;
      whole = r / unit;
      digits = (r % unit).toString().padStart(18, "0").slice(0, 6).replace(/0+$/, "");
      mark = "≈";
    }
    return mark + whole.toString() + (digits ? "." + digits : "") + " ETH";
  }

  function apply(data) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var value = field(data, el.getAttribute("data-live"));
      if (value == null) { return; }
      var text = el.getAttribute("data-live-format") === "eth" ? eth(value) : String(value);
      if (el.textContent !== text) {
        el.textContent = text;
        el.classList.remove("updated"); void el.offsetWidth; el.classList.add("updated");
      }
    });
  }

  // Tables marked data-live-rows="field" are rebuilt from a list of objects,
  // one cell per name in data-live-cols; text only (never HTML from the API).
  function rows(data) {
    document.querySelectorAll("[data-live-rows]").forEach(function (body) {
      var list = field(data, body.getAttribute("data-live-rows"));
      if (!Array.isArray(list) || list.length === 0) { return; }
      var cols = body.getAttribute("data-live-cols").split(",");
      var fresh = document.createDocumentFragment();
      list.forEach(function (item) {
        var tr = document.createElement("tr");
        cols.forEach(function (c) {
          var td = document.createElement("td");
          td.textContent = String(item[c]);
          tr.appendChild(td);
        });
        fresh.appendChild(tr);
      });
      body.replaceChildren(fresh);
    });
  }

  function charts() {
    document.querySelectorAll("[data-live-svg]").forEach(function (box) {
      fetch(box.getAttribute("data-live-svg"), { cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (svg) { if (svg) { box.innerHTML = svg; } })
        .catch(function () {});
    });
  }

  var ticks = 0;
  function tick() {
    fetch(url, { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        apply(data);
        rows(data);
        if (status) { status.textContent = "Live · updated " + new Date().toLocaleTimeString(); }
      })
      .catch(function () { if (status) { status.textContent = "Live updates paused (retrying)"; } })
      .then(function () {
        ticks += 1;
        if (ticks % 10 === 0) { charts(); }
        setTimeout(tick, every);
      });
  }
  setTimeout(tick, every);
}());
