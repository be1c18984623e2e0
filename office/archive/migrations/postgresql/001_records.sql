-- Every durable record of every bus, partitioned by month of the bus's own timestamp.
-- Partitions (records_yYYYYmMM) are created by the archive ahead of need, not here.
-- The primary key must contain the partition key, hence (bus, seq, ts): dedup by (bus, seq)
-- holds because a resent record always carries the ts the bus stamped when it made it.
CREATE SEQUENCE records_arrival_seq;

CREATE TABLE records (
    bus      text        NOT NULL,
    seq      bigint      NOT NULL CHECK (seq >= 0),
    ts       timestamptz NOT NULL,
    schema   text        NOT NULL,
    kind     text        NOT NULL,
    topic    text        NOT NULL,
    received timestamptz NOT NULL,
    -- The order in which records first arrived (an identity column is not allowed on a
    -- partitioned table before PostgreSQL 17).
    arrival  bigint      NOT NULL DEFAULT nextval('records_arrival_seq'),
    data     jsonb       NOT NULL,
    PRIMARY KEY (bus, seq, ts)
) PARTITION BY RANGE (ts);

-- Time-range scans (a day's records) within a month: BRIN is tiny and fits append-mostly data.
CREATE INDEX records_ts_brin ON records USING brin (ts);
