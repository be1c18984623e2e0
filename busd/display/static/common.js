// What both display pages share (the driver's, app.js; the staff's, staff.js): texts from
// the boot block's catalogues, the language buttons, writes with the session's token, and
// the live stream with its reconnect and silence watchdog. Loaded before either page's
// script (both with defer, so in document order). Data only ever goes in as text.
"use strict";

window.busdPage = (function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);

  // The text of key in lang with its {placeholders} filled; Latvian, then the key, if missing.
  function translate(lang, key, params) {
    const messages = boot.messages[lang] || boot.messages.lv;
    let text = messages[key];
    if (text === undefined) text = boot.messages.lv[key] || key;
    if (params) {
      for (const [name, value] of Object.entries(params)) text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  // One button per language in nav; choose(code) gets the one pressed (also put in the URL,
  // so a reload keeps it).
  function languageButtons(nav, current, choose) {
    nav.replaceChildren();
    for (const code of boot.languages) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = code.toUpperCase();
      b.dataset.lang = code;
      b.className = code === current ? "on" : "";
      b.addEventListener("click", () => {
        const url = new URL(location.href);
        url.searchParams.set("lang", code);
        history.replaceState(null, "", url);
        choose(code);
      });
      nav.appendChild(b);
    }
  }

  function post(path, body, token) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Busd-Token": token },
      body: JSON.stringify(body),
    });
  }

  // The daemon's live stream. on.hello(data), on.snapshot(snap), on.ping(data) get the
  // messages; on.change() is called after every snapshot, ping and loss. The returned state
  // says whether the stream is live and when (Date.now()) it was last heard.
  function stream(on) {
    const state = { connected: false, lastMessage: 0 };
    let source = null;
    let retryMs = 2000;
    function heard() {
      state.lastMessage = Date.now();
      retryMs = 2000;
      state.connected = true;
    }
    function connect() {
      source = new EventSource("/events");
      source.addEventListener("hello", (e) => {
        on.hello(JSON.parse(e.data)); // a restarted daemon has a new secret
        heard();
      });
      source.addEventListener("snapshot", (e) => {
        const snap = JSON.parse(e.data);
        heard();
        on.snapshot(snap);
        on.change();
      });
      source.addEventListener("ping", (e) => {
        heard();
        if (on.ping) on.ping(JSON.parse(e.data));
        on.change();
      });
      source.onerror = () => {
        state.connected = false;
        on.change();
        if (source.readyState === EventSource.CLOSED) {
          // The browser gave up (e.g. an error status): retry ourselves, backing off.
          source = null;
          const wait = retryMs * (0.5 + Math.random() / 2);
          retryMs = Math.min(30000, retryMs * 2);
          setTimeout(connect, wait);
        }
      };
    }
    // A stream that went silent for longer than a few heartbeats is as good as lost.
    setInterval(() => {
      if (state.connected && Date.now() - state.lastMessage > (boot.heartbeat_s * 2.5 + 1) * 1000) {
        state.connected = false;
        on.change();
        if (source) source.close();
        source = null;
        connect();
      }
    }, 1000);
    connect();
    return state;
  }

  return { boot, translate, languageButtons, post, stream };
})();
