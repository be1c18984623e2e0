-- Every durable record of every bus. SQLite has no partitions: retention deletes old rows.
-- arrival is the rowid, so it keeps the order in which records first arrived (AUTOINCREMENT:
-- never reused, even after retention deleted the newest rows).
CREATE TABLE records (
    arrival  INTEGER PRIMARY KEY AUTOINCREMENT,
    bus      TEXT    NOT NULL,
    seq      INTEGER NOT NULL CHECK (seq >= 0),
    ts       TEXT    NOT NULL,  -- UTC, ISO 8601 with microseconds: sorts as text
    schema   TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    topic    TEXT    NOT NULL,
    received TEXT    NOT NULL,
    data     TEXT    NOT NULL,  -- JSON
    UNIQUE (bus, seq)
);
CREATE INDEX records_ts ON records (ts);
