// The driver's display. Everything it shows arrives on one Server-Sent Events
// stream from the daemon; every text comes from the catalogues in the boot
// block; data is only ever put into the page as text (never as markup).
"use strict";

(function () {
  const page = window.busdPage; // common.js
  const boot = page.boot;
  let lang = boot.lang;
  let token = boot.token;
  let snap = null;
  let live = { connected: false, lastMessage: 0 }; // the stream's state, once it is started
  let lastMessageTs = null; // the daemon's time of the last message, epoch seconds
  let proposalNote = null; // key of a note under the Accept button
  let pendingAck = null;
  const $ = (id) => document.getElementById(id);

  // --- texts and formats ------------------------------------------------------------------
  const t = (key, params) => page.translate(lang, key, params);
  function num(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "—";
    return Number(x).toFixed(digits).replace(".", t("fmt.decimal"));
  }
  const timeFormats = {};
  function clock(ts, seconds) {
    if (ts === null || ts === undefined) return "—";
    const k = seconds ? "s" : "m";
    if (!timeFormats[k]) {
      const opts = { timeZone: boot.tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
      if (seconds) opts.second = "2-digit";
      timeFormats[k] = new Intl.DateTimeFormat("en-GB", opts);
    }
    return timeFormats[k].format(new Date(ts * 1000));
  }
  function duration(minutes) {
    if (minutes === null || minutes === undefined) return "—";
    const m = Math.round(minutes);
    if (m < 60) return m + " " + t("unit.min");
    return t("fmt.hm", { h: Math.floor(m / 60), m: m % 60 });
  }
  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }
  function setStale(id, stale) {
    $(id).classList.toggle("is-stale", !!stale);
  }

  // --- static texts and the language switch ----------------------------------------------------
  function applyLanguage() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    const nav = $("langs");
    nav.setAttribute("aria-label", t("language"));
    page.languageButtons(nav, lang, (code) => {
      lang = code;
      applyLanguage();
    });
    render();
  }

  // --- drawing ------------------------------------------------------------------------------
  function render() {
    const unreachable = !live.connected;
    document.body.classList.toggle("unreachable", unreachable);
    const stale = unreachable || !snap || snap.stale;
    document.body.classList.toggle("stale", stale);
    setText("stale-text", unreachable ? t("stale.unreachable") : stale ? t("stale.banner") : "");
    setText("updated", live.lastMessage ? t("updated", { t: clock(lastMessageTs, true) }) : "");
    if (!snap) return;
    document.body.classList.toggle("night", !!snap.night);

    setText("speed", num(snap.speed.v, 0) + " " + t("unit.kmh"));
    setStale("speed", snap.speed.stale);
    setText("soc", num(snap.soc.v, 0) + " %");
    setStale("soc", snap.soc.stale);

    if (snap.office) {
      setText("office-state", snap.office.connected ? t("office.online") : t("office.offline"));
      $("office").className = "cell " + (snap.office.connected ? "ok" : "bad");
      setText("office-backlog", snap.office.backlog > 0 ? t("office.backlog", { n: snap.office.backlog }) : "");
    } else {
      setText("office-state", "—");
      setText("office-backlog", "");
    }

    const plan = snap.plan;
    const depot = plan ? plan.depot : null;
    $("depot").className = "depot " + (depot && depot.band ? depot.band : "none");
    if (depot && depot.soc !== null) {
      setText("depot-soc", num(depot.soc, 0) + " %");
      setText("depot-band", t("band." + depot.band));
      const margin = Math.round(depot.margin);
      const signed = (margin > 0 ? "+" : margin < 0 ? "−" : "±") + Math.abs(margin);
      const coming = depot.proposal_at ? " · " + t("depot.proposal_at", { place: depot.proposal_at }) : "";
      setText("depot-detail", t("depot.reserve", { n: num(depot.reserve, 0) }) + " · " + signed + coming);
    } else {
      setText("depot-soc", "—");
      setText("depot-band", t("depot.unknown"));
      setText("depot-detail", "");
    }

    const next = plan ? plan.next : null;
    if (next) {
      setText("next-name", next.name);
      setText("next-eta", clock(next.eta, false));
      const inMin = next.eta ? Math.max(0, Math.round((next.eta - snap.ts) / 60)) : null;
      setText("next-in", inMin === null ? "" : t("next.in", { n: inMin }));
      setText("next-planned", duration(next.planned_min));
      $("next-eta-row").hidden = false;
      $("next-planned-row").hidden = false;
    } else {
      setText("next-name", plan ? t("next.none") : t("plan.none"));
      $("next-eta-row").hidden = true;
      $("next-planned-row").hidden = true;
    }

    renderStops(plan);
    renderProposal(plan ? plan.proposal : null);
    renderClients();

    const lift = snap.lift.state;
    setText("lift-state", lift.v ? t("lift." + lift.v) : t("nodata"));
    setStale("lift-state", lift.stale);
    $("lift-card").classList.toggle("alarm", !!snap.lift.warning);
    $("liftwarn").hidden = !snap.lift.warning;
    document.body.classList.toggle("liftalarm", !!snap.lift.warning);

    const ch = snap.charging;
    $("charging").hidden = !ch;
    if (ch) {
      setText("charge-state", ch.state.v ? t("charge." + ch.state.v) : t("nodata"));
      setStale("charge-state", ch.state.stale);
      setText("charge-power", num(ch.power.v, 1) + " " + t("unit.kw"));
      setStale("charge-power", ch.power.stale);
      setText("charge-energy", num(ch.energy.v, 1) + " " + t("unit.kwh"));
      setStale("charge-energy", ch.energy.stale);
      setText("charge-to", t("charge.to", { n: num(ch.target, 0) }));
      $("charge-eta-row").hidden = ch.minutes_to_target === null;
      setText("charge-eta", "~" + duration(ch.minutes_to_target));
    }

    const list = $("alerts");
    const items = [];
    for (const a of snap.alerts) {
      const key = "alert." + a.kind;
      const known = boot.messages.lv[key] !== undefined;
      items.push([known ? t(key) : t("alert.other", { kind: a.kind }), clock(a.raised_at, false)]);
    }
    for (const h of snap.health) items.push([t("health.degraded", { name: h.name }), ""]);
    list.replaceChildren();
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = t("alerts.none");
      list.appendChild(li);
    }
    for (const [text, when] of items) {
      const li = document.createElement("li");
      li.textContent = when ? when + " " + text : text;
      list.appendChild(li);
    }
    $("alerts-card").classList.toggle("active", items.length > 0);
  }

  function renderStops(plan) {
    const ol = $("stops");
    ol.replaceChildren();
    if (!plan) return;
    for (const s of plan.stops) {
      const li = document.createElement("li");
      li.className = s.status;
      const name = document.createElement("b");
      name.textContent = s.name;
      const status = document.createElement("span");
      status.textContent = t("stop." + s.status);
      li.append(name, status);
      ol.appendChild(li);
    }
  }

  function reasonsFor(reasons) {
    return reasons[lang] || reasons.lv || Object.values(reasons)[0] || [];
  }

  function renderProposal(p) {
    $("proposal").hidden = !p;
    document.body.classList.toggle("proposing", !!p);
    if (!p) {
      pendingAck = null;
      proposalNote = null;
      return;
    }
    $("proposal-emergency").hidden = !p.emergency;
    $("proposal").classList.toggle("emergency-on", !!p.emergency);
    const ul = $("proposal-reasons");
    ul.replaceChildren();
    for (const line of reasonsFor(p.reasons)) {
      const li = document.createElement("li");
      li.textContent = line;
      ul.appendChild(li);
    }
    const busy = pendingAck === p.id;
    $("accept").disabled = busy;
    setText("accept", busy ? t("proposal.sending") : t("proposal.accept"));
    setText("proposal-note", proposalNote ? t(proposalNote) : "");
  }

  // The day's total; the counting itself is on the staff page (/staff).
  function renderClients() {
    const c = snap.clients;
    $("clients-card").hidden = !snap.has_clients;
    const today = snap.clients_today;
    setText("clients-count", today === null || today === undefined ? "—" : String(today));
    setText("clients-note", c ? t("clients.visit", { n: c.count }) : t("clients.novisit"));
  }

  // --- the write ------------------------------------------------------------------
  $("accept").addEventListener("click", async () => {
    const p = snap && snap.plan && snap.plan.proposal;
    if (!p || pendingAck) return;
    pendingAck = p.id;
    proposalNote = null;
    render();
    try {
      const r = await page.post("/api/plan/ack", { proposal_id: p.id }, token);
      if (r.status === 409) proposalNote = "proposal.outdated";
      else if (!r.ok) proposalNote = "proposal.failed";
    } catch (e) {
      proposalNote = "proposal.failed";
    }
    pendingAck = null;
    render();
  });

  // --- the live stream ------------------------------------------------------------------
  live = page.stream({
    hello: (data) => {
      token = data.token; // a restarted daemon has a new secret
    },
    snapshot: (data) => {
      snap = data;
      lastMessageTs = snap.ts;
    },
    ping: (data) => {
      lastMessageTs = data.ts;
    },
    change: render,
  });

  applyLanguage();
})();
