-- The commands the office sent and what each bus made of them (office/archive/commands.py).
-- Written by the sender, status, reason, answered and detail by the bus's receipt and answer
-- as they are archived. 'expired' is not stored: it is read from expires.
CREATE TABLE commands (
    bus      TEXT    NOT NULL,
    id       TEXT    NOT NULL,
    command  TEXT    NOT NULL,
    sent     TEXT    NOT NULL,  -- UTC, ISO 8601 with microseconds, as records.ts
    expires  TEXT,
    day      TEXT,              -- plan: its day, YYYY-MM-DD
    version  INTEGER,
    status   TEXT    NOT NULL DEFAULT 'pending'
             CHECK (status IN ('pending', 'delivered', 'accepted', 'rejected')),
    reason   TEXT    NOT NULL DEFAULT '',
    answered TEXT,              -- the bus's time of its receipt, then of its answer
    detail   TEXT,              -- JSON: the answer's detail
    PRIMARY KEY (bus, id)
);
CREATE INDEX commands_sent ON commands (sent);
