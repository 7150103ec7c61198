-- 0004_mail: the mail outbox. A message is written in the transaction of the
-- change it reports and delivered by a background sender, which claims due
-- rows (status 'pending' and next_attempt_at passed, or 'sending' with an
-- expired lease) with a guarded UPDATE, so that several senders never send
-- one message twice while a lease runs. Recipients are a comma-separated list.

CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recipients      TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    claim_token     TEXT    NOT NULL DEFAULT '',
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
