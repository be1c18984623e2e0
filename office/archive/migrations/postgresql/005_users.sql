-- The office staff who log in to the web (office/web): a name, an argon2 hash, a role.
-- Assigned number 008; 004 on the web branch until 004..007 exist (see the merge note).
CREATE TABLE users (
    name           text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('viewer', 'dispatcher')),
    created        timestamptz NOT NULL,
    changed        timestamptz NOT NULL
);
