-- The office staff who log in to the web (office/web): a name, an argon2 hash, a role.
-- Assigned number 008; 004 on the web branch until 004..007 exist (see the merge note).
CREATE TABLE users (
    name           TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('viewer', 'dispatcher')),
    created        TEXT NOT NULL,
    changed        TEXT NOT NULL
);
