-- 0003_ssh_keys: SSH public keys. A key is a user's (user_id set) or an
-- access key (user_id NULL) granted on projects and repositories through
-- ssh_key_projects and ssh_key_repos. The fingerprint ("SHA256:" + base64 of
-- the SHA-256 of the key's wire form) is unique across both kinds, so that the
-- same key can never be a user key and an access key at once; it is also what
-- SSH authentication looks keys up by. Grants go with their key, project or
-- repository (ON DELETE CASCADE).

CREATE TABLE ssh_keys (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            INTEGER REFERENCES users (id) ON DELETE CASCADE,
    fingerprint        TEXT    NOT NULL UNIQUE,
    text               TEXT    NOT NULL,
    label              TEXT    NOT NULL DEFAULT '',
    label_lower        TEXT    NOT NULL DEFAULT '',
    algorithm          TEXT    NOT NULL,
    bits               INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    created_by         INTEGER NOT NULL DEFAULT 0,
    last_authenticated INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX ssh_keys_user ON ssh_keys (user_id, id);

CREATE TABLE ssh_key_projects (
    key_id     INTEGER NOT NULL REFERENCES ssh_keys (id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    permission TEXT    NOT NULL,
    PRIMARY KEY (key_id, project_id)
) STRICT;
CREATE INDEX ssh_key_projects_project ON ssh_key_projects (project_id, key_id);

CREATE TABLE ssh_key_repos (
    key_id     INTEGER NOT NULL REFERENCES ssh_keys (id) ON DELETE CASCADE,
    repo_id    INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    permission TEXT    NOT NULL,
    PRIMARY KEY (key_id, repo_id)
) STRICT;
CREATE INDEX ssh_key_repos_repo ON ssh_key_repos (repo_id, key_id);
