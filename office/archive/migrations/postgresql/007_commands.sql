-- The commands the office sent and what each bus made of them (office/archive/commands.py).
-- Written by the sender, status, reason, answered and detail by the bus's receipt and answer
-- as they are archived. 'expired' is not stored: it is read from expires.
CREATE TABLE commands (
    bus      text        NOT NULL,
    id       text        NOT NULL,
    command  text        NOT NULL,
    sent     timestamptz NOT NULL,
    expires  timestamptz,
    day      date,
    version  integer,
    status   text        NOT NULL DEFAULT 'pending'
             CHECK (status IN ('pending', 'delivered', 'accepted', 'rejected')),
    reason   text        NOT NULL DEFAULT '',
    answered timestamptz,  -- the bus's time of its receipt, then of its answer
    detail   jsonb,        -- the answer's detail
    PRIMARY KEY (bus, id)
);
CREATE INDEX commands_sent ON commands (sent);
