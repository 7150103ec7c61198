-- 0001_core: users, groups, projects, repositories, permission grants and
-- settings. Booleans are INTEGER 0/1. The *_lower columns hold Go's
-- strings.ToLower of their source so that case-insensitive lookups and
-- filters behave the same on SQLite and PostgreSQL.

CREATE TABLE users (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL UNIQUE,
    name_lower         TEXT    NOT NULL,
    slug               TEXT    NOT NULL UNIQUE,
    display_name       TEXT    NOT NULL DEFAULT '',
    display_name_lower TEXT    NOT NULL DEFAULT '',
    email              TEXT    NOT NULL DEFAULT '',
    email_lower        TEXT    NOT NULL DEFAULT '',
    active             INTEGER NOT NULL DEFAULT 1,
    type               TEXT    NOT NULL DEFAULT 'NORMAL',
    password_hash      TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX users_email_lower ON users (email_lower);
CREATE INDEX users_name_lower ON users (name_lower);

CREATE TABLE groups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    name_lower TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) STRICT;
CREATE INDEX group_members_user ON group_members (user_id, group_id);

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT    NOT NULL,
    key_lower   TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    name_lower  TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT '',
    public      INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE repos (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id     INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    slug           TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    name_lower     TEXT    NOT NULL,
    description    TEXT    NOT NULL DEFAULT '',
    public         INTEGER NOT NULL DEFAULT 0,
    default_branch TEXT    NOT NULL DEFAULT '',
    UNIQUE (project_id, slug)
) STRICT;

-- A grant is global (project_id = repo_id = 0), on a project (repo_id = 0) or
-- on a repository (repo_id and its project's id). Exactly one of user_id and
-- group_id is set; the other is 0. Rows are deleted with their subject or
-- resource by the store, as 0 cannot reference anything.
CREATE TABLE grants (
    project_id INTEGER NOT NULL DEFAULT 0,
    repo_id    INTEGER NOT NULL DEFAULT 0,
    user_id    INTEGER NOT NULL DEFAULT 0,
    group_id   INTEGER NOT NULL DEFAULT 0,
    permission TEXT    NOT NULL,
    level      INTEGER NOT NULL,
    PRIMARY KEY (project_id, repo_id, user_id, group_id),
    CHECK ((user_id = 0) <> (group_id = 0))
) STRICT;
CREATE INDEX grants_user ON grants (user_id, project_id);
CREATE INDEX grants_group ON grants (group_id, project_id);
CREATE INDEX grants_repo ON grants (repo_id);

CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
