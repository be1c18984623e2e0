// The fleet page: a Leaflet map and a table, kept current by the server's event stream.
// No inline script (the CSP forbids it): the data comes in #fleet-data's attributes.
"use strict";
(function () {
  const data = document.getElementById("fleet-data");
  const config = JSON.parse(data.dataset.config);
  const labels = config.labels;
  const dispatcher = data.dataset.dispatcher === "yes";
  const state = document.getElementById("stream-state");
  const tbody = document.querySelector("#fleet-table tbody");
  const formTemplate = document.getElementById("resend-form");

  // The map: tiles from the configured server; routes, stops and buses are vectors, so with
  // no tile reachable they still show on the plain background.
  const map = L.map("fleet-map", { preferCanvas: false, attributionControl: true })
    .setView([56.35, 25.0], 8);
  window.fleetMap = map;
  const tiles = L.tileLayer(config.tile_url, { maxZoom: 18, attribution: config.attribution });
  tiles.on("tileerror", function () { document.body.dataset.tiles = "unreachable"; });
  tiles.on("tileload", function () { document.body.dataset.tiles = "loaded"; });
  tiles.addTo(map);
  const routes = L.layerGroup().addTo(map);
  const buses = L.layerGroup().addTo(map);
  const markers = new Map();
  window.fleetMarkers = markers;  // for the tests and the console
  let fitted = false;

  const STOP_COLOURS = { done: "#5b6570", now: "#0b5cad", next: "#1a7f37", skipped: "#c62828",
                         planned: "#8a94a0", depot: "#1d232a" };

  function socColour(soc) {
    if (soc === null || soc === undefined) return "#8a94a0";
    if (soc < 20) return "#c62828";
    if (soc < 40) return "#b26a00";
    return "#1a7f37";
  }

  // The bus's day page (today in its municipality; the server picks the day).
  function dayHref(bus) { return "/buses/" + encodeURIComponent(bus.bus) + "/day"; }

  function popup(bus) {
    const holder = document.createElement("div");
    const link = document.createElement("a");
    link.href = dayHref(bus);
    link.className = "day-link";
    link.textContent = bus.bus + " · " + labels.day_link;
    holder.appendChild(link);
    return holder;
  }

  function text(value) { return value === null || value === undefined ? "–" : String(value); }

  function drawRoutes(snapshot) {
    routes.clearLayers();
    for (const bus of snapshot.buses) {
      if (!bus.route.length) continue;
      const path = bus.route.filter(function (s) { return s.status !== "skipped"; })
        .map(function (s) { return [s.lat, s.lon]; });
      const depot = bus.route.find(function (s) { return s.status === "depot"; });
      if (depot) path.push([depot.lat, depot.lon]);
      L.polyline(path, { color: "#0b5cad", weight: 2, opacity: 0.6, className: "route" })
        .addTo(routes);
      for (const stop of bus.route) {
        L.circleMarker([stop.lat, stop.lon], {
          radius: stop.status === "depot" ? 7 : 5, color: STOP_COLOURS[stop.status],
          fillOpacity: 0.8, className: "stop stop-" + stop.status,
        }).bindTooltip(stop.name + " · " + (labels[stop.status] || stop.status)).addTo(routes);
      }
    }
  }

  function busIcon(bus) {
    // An arrow pointing along the heading, filled by SOC; grey and hollow when offline.
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "-12 -12 24 24");
    svg.setAttribute("width", "24");
    svg.setAttribute("height", "24");
    const arrow = document.createElementNS("http://www.w3.org/2000/svg", "path");
    arrow.setAttribute("d", "M0,-10 L7,8 L0,4 L-7,8 Z");
    arrow.setAttribute("transform", "rotate(" + (bus.heading || 0) + ")");
    arrow.setAttribute("fill", bus.online ? socColour(bus.soc) : "#ffffff");
    arrow.setAttribute("stroke", bus.online ? "#1d232a" : "#8a94a0");
    arrow.setAttribute("stroke-width", "1.5");
    svg.appendChild(arrow);
    const holder = document.createElement("div");
    holder.appendChild(svg);
    return L.divIcon({ html: holder, className: "bus-marker " + (bus.online ? "on" : "off"),
                       iconSize: [24, 24], iconAnchor: [12, 12] });
  }

  function drawBuses(snapshot) {
    const seen = new Set();
    const points = [];
    for (const bus of snapshot.buses) {
      if (bus.lat === null || bus.lon === null) continue;
      seen.add(bus.bus);
      points.push([bus.lat, bus.lon]);
      const tip = bus.bus + " · " + text(bus.soc) + " % · " +
        (bus.online ? labels.is_online : labels.is_offline) + " · " + bus.last_seen_local;
      let marker = markers.get(bus.bus);
      if (!marker) {
        marker = L.marker([bus.lat, bus.lon], { icon: busIcon(bus), title: bus.bus,
                                                keyboard: false });
        marker.bindTooltip(tip);
        marker.bindPopup(popup(bus));
        marker.addTo(buses);
        markers.set(bus.bus, marker);
      } else {
        marker.setLatLng([bus.lat, bus.lon]);
        marker.setIcon(busIcon(bus));
        marker.setTooltipContent(tip);
      }
    }
    for (const [id, marker] of markers) {
      if (!seen.has(id)) { buses.removeLayer(marker); markers.delete(id); }
    }
    if (!fitted && points.length) {
      map.fitBounds(L.latLngBounds(points).pad(0.2), { maxZoom: 12 });
      fitted = true;
    }
  }

  function cell(row, value, cls) {
    const td = document.createElement("td");
    td.textContent = text(value);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function drawTable(snapshot) {
    const rows = [];
    for (const bus of snapshot.buses) {
      const tr = document.createElement("tr");
      tr.dataset.bus = bus.bus;
      tr.dataset.online = bus.online ? "yes" : "no";
      const name = cell(tr, null);
      const link = document.createElement("a");
      link.href = dayHref(bus);
      link.textContent = bus.bus;
      link.className = "day-link";
      name.replaceChildren(link);
      cell(tr, bus.online ? labels.is_online : labels.is_offline, bus.online ? "online" : "offline");
      cell(tr, bus.soc === null ? null : bus.soc.toFixed(1), "num soc");
      const coming = bus.change_at ? " · " + labels.change_at.replace("{place}", bus.change_at) : "";
      const depot = bus.depot_soc === null ? null :
        bus.depot_soc.toFixed(0) + " / " + text(bus.reserve_pct) + coming;
      cell(tr, depot, "num" + (bus.depot_ok === false ? " low" : ""));
      cell(tr, bus.stop_now);
      cell(tr, bus.stop_next);
      cell(tr, bus.alerts.join(", ") || null, "alerts");
      // The bus's own backlog (unsent records, oldest one's age); an older bus that does not
      // send it: how far the archive is behind its last state.
      const backlog = bus.outbox_unsent !== null ?
        bus.outbox_unsent + " · " + (bus.outbox_oldest_s === null ? "0" :
                                     Math.round(bus.outbox_oldest_s)) + " s" :
        bus.archive_behind_s === null ? null : "≈ " + Math.round(bus.archive_behind_s) + " s";
      cell(tr, backlog, "num backlog");
      cell(tr, bus.complete_pct === null ? null : bus.complete_pct.toFixed(1) + " %",
           "num complete");
      cell(tr, bus.last_seen_local, "seen");
      if (dispatcher) {
        const td = document.createElement("td");
        const form = formTemplate.content.firstElementChild.cloneNode(true);
        form.action = "/buses/" + encodeURIComponent(bus.bus) + "/resend";
        td.appendChild(form);
        tr.appendChild(td);
      }
      rows.push(tr);
    }
    tbody.replaceChildren.apply(tbody, rows);
    document.body.dataset.buses = String(snapshot.buses.length);
    document.body.dataset.updated = String(snapshot.ts);
  }

  let lastRoutes = "";
  function draw(snapshot) {
    const routeKey = JSON.stringify(snapshot.buses.map(function (b) { return b.route; }));
    if (routeKey !== lastRoutes) { drawRoutes(snapshot); lastRoutes = routeKey; }
    drawBuses(snapshot);
    drawTable(snapshot);
  }

  draw(JSON.parse(data.dataset.snapshot));
  // benchmarks/office_web.py reads it: when the page had drawn this many buses.
  performance.mark("fleet-drawn", { detail: markers.size });

  // EventSource reconnects by itself (after the stream's "retry"); we only show the state.
  const source = new EventSource("/fleet/events");
  window.fleetStreamOpens = 0;
  source.addEventListener("open", function () {
    window.fleetStreamOpens += 1;
    state.textContent = labels.live;
    state.dataset.state = "live";
  });
  source.addEventListener("error", function () {
    state.textContent = labels.reconnecting;
    state.dataset.state = "reconnecting";
    if (source.readyState === EventSource.CLOSED) {
      // Refused (not a broken stream, which EventSource retries by itself): the session
      // ended while the server was away. Ask once; the login page if so, else try again.
      fetch("/fleet.json", { credentials: "same-origin" }).then(function (response) {
        if (response.status === 401) window.location.assign("/login?expired=1");
        else window.setTimeout(function () { window.location.reload(); }, 5000);
      }, function () { window.setTimeout(function () { window.location.reload(); }, 5000); });
    }
  });
  source.addEventListener("fleet", function (event) { draw(JSON.parse(event.data)); });
  source.addEventListener("expired", function () {
    source.close();
    window.location.assign("/login?expired=1");
  });
})();
