-- 0002_tokens: HTTP access tokens. Only the keyed digest of a secret is
-- stored; id is the non-secret 12-digit id shown everywhere else. A project
-- or repository token belongs to its own SERVICE user (user_id) and is bound
-- by project_id and repo_id; a personal token has both 0.

CREATE TABLE access_tokens (
    id                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    kind               TEXT   NOT NULL,
    name               TEXT   NOT NULL,
    user_id            BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id         BIGINT NOT NULL DEFAULT 0,
    repo_id            BIGINT NOT NULL DEFAULT 0,
    permissions        TEXT   NOT NULL DEFAULT '',
    allowed_cidrs      TEXT   NOT NULL DEFAULT '',
    digest             BYTEA  NOT NULL UNIQUE,
    prev_digest        BYTEA  UNIQUE,
    prev_expires_at    BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL DEFAULT 0,
    last_authenticated BIGINT NOT NULL DEFAULT 0,
    last_address       TEXT   NOT NULL DEFAULT '',
    created_by         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX access_tokens_user ON access_tokens (user_id, created_at);
CREATE INDEX access_tokens_resource ON access_tokens (project_id, repo_id, created_at);
