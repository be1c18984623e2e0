-- The schedule's make-up proposals (office/schedule/proposals.py): a service point's visit
-- that was missed (skipped, shortened below its minimum, or due on a public holiday), offered
-- for the next reserve day, and confirmed by the office before a day plan includes it.
-- SQLite: days are YYYY-MM-DD text, times UTC ISO 8601 text.
CREATE TABLE schedule_proposals (
    id            TEXT PRIMARY KEY,   -- municipality/point/missed day: found once, kept once
    municipality  TEXT NOT NULL,
    bus           TEXT NOT NULL,
    point_id      TEXT NOT NULL,
    point_name    TEXT NOT NULL,
    missed_day    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    minutes       REAL NOT NULL,      -- minutes on site that day (0: not visited)
    min_min       REAL NOT NULL,
    reserve_day   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('proposed', 'confirmed')),
    created       TEXT NOT NULL,
    confirmed     TEXT
);
CREATE INDEX schedule_proposals_reserve ON schedule_proposals (municipality, reserve_day);
