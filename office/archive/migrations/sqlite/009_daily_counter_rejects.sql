-- daily_reports: the charger counter readings the bus rejected that day (a reset, a jump to a
-- lifetime total), which its daily report carries; 0 for older reports.
ALTER TABLE daily_reports ADD COLUMN charger_counter_rejects INTEGER NOT NULL DEFAULT 0;
