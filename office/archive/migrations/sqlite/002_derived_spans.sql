-- Derived from the tracker's events: visits, legs and charging sessions, one row each.
-- SQLite: times are UTC ISO 8601 text with microseconds (as in records), days YYYY-MM-DD text,
-- JSON is text, booleans are 0/1.
-- Keyed by the event's own id (kind and start time, stable across a span's updates); seq is
-- the bus's record that gave the row its state: a record with a higher seq is a later state
-- (visit_ended after visit_started), so an upsert only overwrites a row with an older seq and
-- events arriving twice or out of order still leave the latest state.
-- day is the local day (the archive's time zone) the span started on; start_ts decides the
-- UTC month retention drops it with. Not partitioned: a few dozen rows per bus and day.
CREATE TABLE visits (
    bus         TEXT        NOT NULL,
    id          TEXT        NOT NULL,
    seq         INTEGER     NOT NULL,
    day         TEXT        NOT NULL,
    status      TEXT        NOT NULL,
    start_ts    TEXT        NOT NULL,
    end_ts      TEXT,
    duration_min REAL NOT NULL,
    place_id    TEXT,
    place_name  TEXT,
    place_kind  TEXT,
    lat         REAL,
    lon         REAL,
    out_kwh     REAL NOT NULL,
    regen_kwh   REAL NOT NULL,
    charged_kwh REAL NOT NULL,
    net_kwh     REAL NOT NULL,
    gap_s       REAL NOT NULL,
    off_s       REAL NOT NULL,
    lift_cycles INTEGER     NOT NULL,
    temp_c      REAL,
    soc_start   REAL,
    soc_end     REAL,
    soc_min     REAL,
    PRIMARY KEY (bus, id)
);
CREATE INDEX visits_day ON visits (day, bus);
CREATE INDEX visits_start ON visits (start_ts);

CREATE TABLE legs (
    bus         TEXT        NOT NULL,
    id          TEXT        NOT NULL,
    seq         INTEGER     NOT NULL,
    day         TEXT        NOT NULL,
    status      TEXT        NOT NULL,
    start_ts    TEXT        NOT NULL,
    end_ts      TEXT,
    duration_min REAL NOT NULL,
    from_place  TEXT,
    from_name   TEXT,
    to_place    TEXT,
    to_name     TEXT,
    km          REAL NOT NULL,
    km_source   TEXT        NOT NULL,
    out_kwh     REAL NOT NULL,
    regen_kwh   REAL NOT NULL,
    net_kwh     REAL NOT NULL,
    kwh_per_km  REAL,
    avg_kmh     REAL,
    gap_s       REAL NOT NULL,
    off_s       REAL NOT NULL,
    temp_c      REAL,
    soc_start   REAL,
    soc_end     REAL,
    soc_used    REAL,
    PRIMARY KEY (bus, id)
);
CREATE INDEX legs_day ON legs (day, bus);
CREATE INDEX legs_start ON legs (start_ts);

CREATE TABLE charging (
    bus         TEXT        NOT NULL,
    id          TEXT        NOT NULL,
    seq         INTEGER     NOT NULL,
    day         TEXT        NOT NULL,
    status      TEXT        NOT NULL,
    start_ts    TEXT        NOT NULL,
    end_ts      TEXT,
    duration_min REAL NOT NULL,
    place_id    TEXT,
    place_name  TEXT,
    place_kind  TEXT,
    lat         REAL,
    lon         REAL,
    energy_added_kwh REAL NOT NULL,
    session_kwh REAL,
    peak_kw     REAL NOT NULL,
    charger_kwh REAL,
    battery_kwh REAL,
    charge_diff_kwh REAL,
    soc_start   REAL,
    soc_end     REAL,
    temp_c      REAL,
    PRIMARY KEY (bus, id)
);
CREATE INDEX charging_day ON charging (day, bus);
CREATE INDEX charging_start ON charging (start_ts);
