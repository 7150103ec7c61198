-- 0007_reminders: which expiry reminders were sent, so that each is sent
-- exactly once across restarts and nodes.

CREATE TABLE reminders_sent (
    credential TEXT COLLATE "C" NOT NULL,
    reminder   TEXT COLLATE "C" NOT NULL,
    sent_at    BIGINT NOT NULL,
    PRIMARY KEY (credential, reminder)
);
CREATE INDEX access_tokens_expires ON access_tokens (expires_at) WHERE expires_at <> 0;
