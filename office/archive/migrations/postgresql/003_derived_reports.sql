-- Derived: the bus's daily reports, its plan changes and its alerts.
-- daily_reports: one row per bus and operating day (the report's own day); a report sent
-- again for the same day (a later seq) replaces the earlier one.
CREATE TABLE daily_reports (
    bus                 text        NOT NULL,
    day                 date        NOT NULL,
    seq                 bigint      NOT NULL,
    ts                  timestamptz NOT NULL,
    created             timestamptz NOT NULL,
    km                  double precision NOT NULL,
    energy_out_kwh      double precision NOT NULL,
    energy_regen_kwh    double precision NOT NULL,
    energy_charged_kwh  double precision NOT NULL,
    energy_net_kwh      double precision NOT NULL,
    driving_kwh_per_km  double precision,
    kwh_per_km          double precision,
    driving_min         double precision NOT NULL,
    on_site_min         double precision NOT NULL,
    charging_min        double precision NOT NULL,
    legs                integer     NOT NULL,
    visits              integer     NOT NULL,
    unplanned_stops     integer     NOT NULL,
    stops_served        integer     NOT NULL,
    stops_shortened     integer     NOT NULL,
    stops_skipped       integer     NOT NULL,
    stops               jsonb       NOT NULL,
    charging_sessions   integer     NOT NULL,
    min_soc             double precision,
    lift_cycles         integer     NOT NULL,
    clients_served      integer     NOT NULL,
    alerts              integer     NOT NULL,
    energy_gap_min      double precision NOT NULL,
    switched_off_min    double precision NOT NULL,
    charging_charger_kwh double precision,
    charging_battery_kwh double precision NOT NULL,
    charging_diff_kwh   double precision,
    open_records        integer     NOT NULL,
    PRIMARY KEY (bus, day)
);
CREATE INDEX daily_reports_day ON daily_reports (day, bus);
CREATE INDEX daily_reports_ts ON daily_reports (ts);

-- plan_changes: one row per plan event (a plan loaded, a proposal made, superseded, withdrawn
-- or accepted, the bus's answer to an office plan), keyed by the bus's record (bus, seq).
CREATE TABLE plan_changes (
    bus             text        NOT NULL,
    seq             bigint      NOT NULL,
    ts              timestamptz NOT NULL,
    day             date        NOT NULL,
    cause           text        NOT NULL,
    version         integer,
    proposal_id     text,
    proposal_kind   text,
    emergency       boolean,
    accepted        boolean,
    reason          text,
    changes         jsonb       NOT NULL,
    reasons         jsonb       NOT NULL,
    itinerary       jsonb,
    depot_soc_before double precision,
    depot_soc_after  double precision,
    PRIMARY KEY (bus, seq)
);
CREATE INDEX plan_changes_day ON plan_changes (day, bus);
CREATE INDEX plan_changes_ts ON plan_changes (ts);

-- alerts: one row per situation, keyed by (bus, alert, raised_at), which both the raise and
-- the clear carry: each fills its own columns, so the clear may arrive first.
CREATE TABLE alerts (
    bus             text        NOT NULL,
    alert           text        NOT NULL,
    raised_at       timestamptz NOT NULL,
    day             date        NOT NULL,
    message         text,
    details         jsonb,
    raised_seq      bigint,
    cleared_at      timestamptz,
    duration_s      double precision,
    cleared_details jsonb,
    cleared_seq     bigint,
    PRIMARY KEY (bus, alert, raised_at)
);
CREATE INDEX alerts_raised ON alerts (raised_at, bus);
