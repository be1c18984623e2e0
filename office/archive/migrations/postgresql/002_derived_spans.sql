-- Derived from the tracker's events: visits, legs and charging sessions, one row each.
-- Keyed by the event's own id (kind and start time, stable across a span's updates); seq is
-- the bus's record that gave the row its state: a record with a higher seq is a later state
-- (visit_ended after visit_started), so an upsert only overwrites a row with an older seq and
-- events arriving twice or out of order still leave the latest state.
-- day is the local day (the archive's time zone) the span started on; start_ts decides the
-- UTC month retention drops it with. Not partitioned: a few dozen rows per bus and day.
CREATE TABLE visits (
    bus         text        NOT NULL,
    id          text        NOT NULL,
    seq         bigint      NOT NULL,
    day         date        NOT NULL,
    status      text        NOT NULL,
    start_ts    timestamptz NOT NULL,
    end_ts      timestamptz,
    duration_min double precision NOT NULL,
    place_id    text,
    place_name  text,
    place_kind  text,
    lat         double precision,
    lon         double precision,
    out_kwh     double precision NOT NULL,
    regen_kwh   double precision NOT NULL,
    charged_kwh double precision NOT NULL,
    net_kwh     double precision NOT NULL,
    gap_s       double precision NOT NULL,
    off_s       double precision NOT NULL,
    lift_cycles integer     NOT NULL,
    temp_c      double precision,
    soc_start   double precision,
    soc_end     double precision,
    soc_min     double precision,
    PRIMARY KEY (bus, id)
);
CREATE INDEX visits_day ON visits (day, bus);
CREATE INDEX visits_start ON visits (start_ts);

CREATE TABLE legs (
    bus         text        NOT NULL,
    id          text        NOT NULL,
    seq         bigint      NOT NULL,
    day         date        NOT NULL,
    status      text        NOT NULL,
    start_ts    timestamptz NOT NULL,
    end_ts      timestamptz,
    duration_min double precision NOT NULL,
    from_place  text,
    from_name   text,
    to_place    text,
    to_name     text,
    km          double precision NOT NULL,
    km_source   text        NOT NULL,
    out_kwh     double precision NOT NULL,
    regen_kwh   double precision NOT NULL,
    net_kwh     double precision NOT NULL,
    kwh_per_km  double precision,
    avg_kmh     double precision,
    gap_s       double precision NOT NULL,
    off_s       double precision NOT NULL,
    temp_c      double precision,
    soc_start   double precision,
    soc_end     double precision,
    soc_used    double precision,
    PRIMARY KEY (bus, id)
);
CREATE INDEX legs_day ON legs (day, bus);
CREATE INDEX legs_start ON legs (start_ts);

CREATE TABLE charging (
    bus         text        NOT NULL,
    id          text        NOT NULL,
    seq         bigint      NOT NULL,
    day         date        NOT NULL,
    status      text        NOT NULL,
    start_ts    timestamptz NOT NULL,
    end_ts      timestamptz,
    duration_min double precision NOT NULL,
    place_id    text,
    place_name  text,
    place_kind  text,
    lat         double precision,
    lon         double precision,
    energy_added_kwh double precision NOT NULL,
    session_kwh double precision,
    peak_kw     double precision NOT NULL,
    charger_kwh double precision,
    battery_kwh double precision,
    charge_diff_kwh double precision,
    soc_start   double precision,
    soc_end     double precision,
    temp_c      double precision,
    PRIMARY KEY (bus, id)
);
CREATE INDEX charging_day ON charging (day, bus);
CREATE INDEX charging_start ON charging (start_ts);
