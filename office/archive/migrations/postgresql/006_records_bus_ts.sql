-- One bus's records in a time range (the office's day view: its SOC series, its proposals):
-- the primary key (bus, seq, ts) cannot serve a range of ts, and the BRIN index on ts alone
-- scans every bus's records of the range. Created on the parent, so on every partition.
CREATE INDEX records_bus_ts ON records (bus, ts);
