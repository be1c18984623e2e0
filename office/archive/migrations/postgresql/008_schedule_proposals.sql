-- The schedule's make-up proposals (office/schedule/proposals.py): a service point's visit
-- that was missed (skipped, shortened below its minimum, or due on a public holiday), offered
-- for the next reserve day, and confirmed by the office before a day plan includes it.
CREATE TABLE schedule_proposals (
    id            text PRIMARY KEY,   -- municipality/point/missed day: found once, kept once
    municipality  text NOT NULL,
    bus           text NOT NULL,
    point_id      text NOT NULL,
    point_name    text NOT NULL,
    missed_day    date NOT NULL,
    reason        text NOT NULL,
    minutes       double precision NOT NULL,  -- minutes on site that day (0: not visited)
    min_min       double precision NOT NULL,
    reserve_day   date NOT NULL,
    status        text NOT NULL CHECK (status IN ('proposed', 'confirmed')),
    created       timestamptz NOT NULL,
    confirmed     timestamptz
);
CREATE INDEX schedule_proposals_reserve ON schedule_proposals (municipality, reserve_day);
