// The staff page: a +/- counter per service type and the activity toggle, for the
// service specialists' tablet inside the bus. Counts only, never who. It reads the
// same live stream as the driver's display (snapshot.clients) and writes through
// POST /api/clients and /api/activity with the session's token. Data is only ever
// put into the page as text (never as markup).
"use strict";

(function () {
  const page = window.busdPage; // common.js
  const boot = page.boot;
  const services = boot.services;
  let lang = boot.lang;
  let token = boot.token;
  let snap = null;
  let live = { connected: false }; // the stream's state, once it is started
  let note = null; // key of the note in the footer
  let busy = false;
  const $ = (id) => document.getElementById(id);

  const t = (key, params) => page.translate(lang, key, params);
  const label = (entry) => entry.labels[lang] || entry.labels.lv;
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function minutes(m) {
    const r = Math.round(m || 0);
    return r < 60 ? r + " " + t("unit.min") : t("fmt.hm", { h: Math.floor(r / 60), m: r % 60 });
  }

  // --- the controls, built once per language -------------------------------------------------
  function button(cls, text, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = cls;
    b.textContent = text;
    b.addEventListener("click", onClick);
    return b;
  }
  function build() {
    const list = $("services");
    list.replaceChildren();
    for (const type of services.types) {
      const li = document.createElement("li");
      li.dataset.type = type.id;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = label(type);
      const n = document.createElement("span");
      n.className = "n";
      li.append(name, button("sbtn minus", t("clients.minus"), () => count(type.id, -1)), n,
                button("sbtn plus", t("clients.plus"), () => count(type.id, 1)));
      list.appendChild(li);
    }
    const acts = $("activities");
    acts.replaceChildren();
    $("activity-card").hidden = services.activities.length === 0;
    for (const a of [...services.activities, { id: null }]) {
      const b = button("abtn", "", () => choose(a.id));
      b.dataset.activity = a.id === null ? "" : a.id;
      const name = document.createElement("span");
      name.textContent = a.id === null ? t("staff.activity.none") : label(a);
      const time = document.createElement("span");
      time.className = "time";
      b.append(name, time);
      acts.appendChild(b);
    }
  }
  function applyLanguage() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    page.languageButtons($("langs"), lang, (code) => {
      lang = code;
      applyLanguage();
    });
    build();
    render();
  }

  function render() {
    const connected = live.connected;
    document.body.classList.toggle("unreachable", !connected);
    document.body.classList.toggle("night", !!(snap && snap.night));
    setText($("stale-text"), connected ? "" : t("stale.unreachable"));
    const c = snap ? snap.clients : null;
    const off = !c || !connected || busy;
    setText($("place"), c && c.place ? t("staff.place", { name: c.place }) : c ? "" : t("clients.novisit"));
    setText($("total"), c ? t("staff.total", { n: c.count }) : "");
    for (const li of $("services").children) {
      const n = c ? c.counts[li.dataset.type] || 0 : null;
      setText(li.querySelector(".n"), n === null ? "—" : String(n));
      li.querySelector(".minus").disabled = off || !n;
      li.querySelector(".plus").disabled = off;
    }
    for (const b of $("activities").children) {
      const id = b.dataset.activity || null;
      b.classList.toggle("on", !!c && c.activity === id);
      b.setAttribute("aria-pressed", String(!!c && c.activity === id));
      b.disabled = off;
      const m = c && id ? c.activities_min[id] : null;
      setText(b.querySelector(".time"), m ? minutes(m) : "");
    }
    setText($("note"), note ? t(note) : "");
  }

  async function write(path, body, apply) {
    note = null;
    busy = true;
    render();
    try {
      const r = await page.post(path, body, token);
      if (r.ok) apply(await r.json());
      else note = r.status === 409 ? "clients.novisit" : "clients.failed";
    } catch (e) {
      note = "clients.failed";
    }
    busy = false;
    render();
  }
  function count(type, delta) {
    return write("/api/clients", { service: type, delta: delta }, (body) => {
      if (snap && snap.clients) {
        const before = snap.clients.counts[type] || 0;
        snap.clients.counts[type] = body.count;
        snap.clients.count += body.count - before;
      }
    });
  }
  function choose(activity) {
    return write("/api/activity", { activity: activity }, (body) => {
      if (snap && snap.clients) snap.clients.activity = body.activity;
    });
  }

  // --- the live stream (as the driver's page) -------------------------------------------------
  live = page.stream({
    hello: (data) => {
      token = data.token; // a restarted daemon has a new secret
    },
    snapshot: (data) => {
      snap = data;
    },
    change: render,
  });

  applyLanguage();
})();
