-- The office web's failed logins (office/web/auth.py, LoginLimiter), shared by every web
-- process so that N of them behind one address still allow a guesser only so many tries.
-- A key is a user name or an address, stored as its SHA-256 only. Times are epoch seconds.
CREATE TABLE web_login_failures (
    key_hash  TEXT NOT NULL,
    at        REAL NOT NULL
);
CREATE INDEX web_login_failures_key ON web_login_failures (key_hash, at);
