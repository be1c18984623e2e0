-- One bus's records in a time range (the office's day view: its SOC series, its proposals):
-- UNIQUE (bus, seq) cannot serve a range of ts, and records_ts scans every bus's records.
CREATE INDEX records_bus_ts ON records (bus, ts);
