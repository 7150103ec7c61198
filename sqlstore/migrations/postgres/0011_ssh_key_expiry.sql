-- 0011_ssh_key_expiry: when an SSH key (a user's or an access key) stops
-- working, epoch milliseconds; 0 for never. Set once, when the key is added.
-- Expiry reminders find keys by it.

ALTER TABLE ssh_keys ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX ssh_keys_expires ON ssh_keys (expires_at) WHERE expires_at <> 0;
