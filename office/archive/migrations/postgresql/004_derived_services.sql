-- Derived: services by type and time by activity (the staff page on the bus, issue 16 point 6).
-- Numbered 006 on main (004 and 005 are other branches'): renumber at merge.
-- visit_services: one row per counted visit, from its visit_ended (the latest seq wins):
-- clients served per service type (counts only, never who) and minutes per activity.
CREATE TABLE visit_services (
    bus             text        NOT NULL,
    id              text        NOT NULL,
    seq             bigint      NOT NULL,
    day             date        NOT NULL,
    start_ts        timestamptz NOT NULL,
    place_id        text,
    place_name      text,
    services        jsonb       NOT NULL,
    activities_min  jsonb       NOT NULL,
    PRIMARY KEY (bus, id)
);
CREATE INDEX visit_services_day ON visit_services (day, bus);
CREATE INDEX visit_services_start ON visit_services (start_ts);
-- daily_reports: the day's counts per type and minutes per activity ({} from older buses).
ALTER TABLE daily_reports ADD COLUMN services jsonb NOT NULL DEFAULT '{}';
ALTER TABLE daily_reports ADD COLUMN activities_min jsonb NOT NULL DEFAULT '{}';
