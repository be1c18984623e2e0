-- Derived: the bus's daily reports, its plan changes and its alerts.
-- SQLite: times are UTC ISO 8601 text with microseconds (as in records), days YYYY-MM-DD text,
-- JSON is text, booleans are 0/1.
-- daily_reports: one row per bus and operating day (the report's own day); a report sent
-- again for the same day (a later seq) replaces the earlier one.
CREATE TABLE daily_reports (
    bus                 TEXT        NOT NULL,
    day                 TEXT        NOT NULL,
    seq                 INTEGER     NOT NULL,
    ts                  TEXT        NOT NULL,
    created             TEXT        NOT NULL,
    km                  REAL NOT NULL,
    energy_out_kwh      REAL NOT NULL,
    energy_regen_kwh    REAL NOT NULL,
    energy_charged_kwh  REAL NOT NULL,
    energy_net_kwh      REAL NOT NULL,
    driving_kwh_per_km  REAL,
    kwh_per_km          REAL,
    driving_min         REAL NOT NULL,
    on_site_min         REAL NOT NULL,
    charging_min        REAL NOT NULL,
    legs                INTEGER     NOT NULL,
    visits              INTEGER     NOT NULL,
    unplanned_stops     INTEGER     NOT NULL,
    stops_served        INTEGER     NOT NULL,
    stops_shortened     INTEGER     NOT NULL,
    stops_skipped       INTEGER     NOT NULL,
    stops               TEXT        NOT NULL,
    charging_sessions   INTEGER     NOT NULL,
    min_soc             REAL,
    lift_cycles         INTEGER     NOT NULL,
    clients_served      INTEGER     NOT NULL,
    alerts              INTEGER     NOT NULL,
    energy_gap_min      REAL NOT NULL,
    switched_off_min    REAL NOT NULL,
    charging_charger_kwh REAL,
    charging_battery_kwh REAL NOT NULL,
    charging_diff_kwh   REAL,
    open_records        INTEGER     NOT NULL,
    PRIMARY KEY (bus, day)
);
CREATE INDEX daily_reports_day ON daily_reports (day, bus);
CREATE INDEX daily_reports_ts ON daily_reports (ts);

-- plan_changes: one row per plan event (a plan loaded, a proposal made, superseded, withdrawn
-- or accepted, the bus's answer to an office plan), keyed by the bus's record (bus, seq).
CREATE TABLE plan_changes (
    bus             TEXT        NOT NULL,
    seq             INTEGER     NOT NULL,
    ts              TEXT        NOT NULL,
    day             TEXT        NOT NULL,
    cause           TEXT        NOT NULL,
    version         INTEGER,
    proposal_id     TEXT,
    proposal_kind   TEXT,
    emergency       INTEGER,
    accepted        INTEGER,
    reason          TEXT,
    changes         TEXT        NOT NULL,
    reasons         TEXT        NOT NULL,
    itinerary       TEXT,
    depot_soc_before REAL,
    depot_soc_after  REAL,
    PRIMARY KEY (bus, seq)
);
CREATE INDEX plan_changes_day ON plan_changes (day, bus);
CREATE INDEX plan_changes_ts ON plan_changes (ts);

-- alerts: one row per situation, keyed by (bus, alert, raised_at), which both the raise and
-- the clear carry: each fills its own columns, so the clear may arrive first.
CREATE TABLE alerts (
    bus             TEXT        NOT NULL,
    alert           TEXT        NOT NULL,
    raised_at       TEXT        NOT NULL,
    day             TEXT        NOT NULL,
    message         TEXT,
    details         TEXT,
    raised_seq      INTEGER,
    cleared_at      TEXT,
    duration_s      REAL,
    cleared_details TEXT,
    cleared_seq     INTEGER,
    PRIMARY KEY (bus, alert, raised_at)
);
CREATE INDEX alerts_raised ON alerts (raised_at, bus);
