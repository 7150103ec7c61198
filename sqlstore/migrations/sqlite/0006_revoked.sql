-- 0006_revoked: the keyed digests of revoked (deleted) access tokens, so
-- that a validity check or a leak report on such a secret answers "revoked"
-- rather than "unknown". Only the digest and the non-secret id are kept.

CREATE TABLE revoked_tokens (
    digest     BLOB    NOT NULL PRIMARY KEY,
    id         TEXT    NOT NULL,
    kind       TEXT    NOT NULL DEFAULT '',
    revoked_at INTEGER NOT NULL
) STRICT;
