-- The office web's logins (office/web/sessions.py), kept here rather than in one web process's
-- memory: several web processes behind one address share them, and a restart keeps them.
-- The cookie's value is not stored, only its SHA-256: a copy of the database opens no session.
-- Times are epoch seconds on the web's clock.
CREATE TABLE web_sessions (
    id_hash    text PRIMARY KEY,
    user_name  text NOT NULL,
    csrf       text NOT NULL,
    stamp      text,
    lang       text,
    started    double precision NOT NULL,
    seen       double precision NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_name);
