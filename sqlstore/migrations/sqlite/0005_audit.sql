-- 0005_audit: the audit trail of credential events. Secrets never appear:
-- tokens are named by their non-secret id.

CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    time            INTEGER NOT NULL,
    type            TEXT    NOT NULL,
    actor_id        INTEGER NOT NULL DEFAULT 0,
    actor_name      TEXT    NOT NULL DEFAULT '',
    credential_kind TEXT    NOT NULL DEFAULT '',
    credential_id   TEXT    NOT NULL DEFAULT '',
    target          TEXT    NOT NULL DEFAULT '',
    address         TEXT    NOT NULL DEFAULT '',
    user_agent      TEXT    NOT NULL DEFAULT '',
    outcome         TEXT    NOT NULL DEFAULT '',
    detail          TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_type ON audit_events (type, time);
CREATE INDEX audit_events_actor ON audit_events (actor_name, time);
