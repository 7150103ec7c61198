-- 0009_token_addresses: the client addresses each token was used from, so
-- that the first use from a new address is audited exactly once.

CREATE TABLE token_addresses (
    token_id   TEXT COLLATE "C" NOT NULL REFERENCES access_tokens (id) ON DELETE CASCADE,
    address    TEXT COLLATE "C" NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (token_id, address)
);
