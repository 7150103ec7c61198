-- 0010_unique_email: one user per email address, compared case-insensitively,
-- so that two concurrent creations cannot both take one address. Service
-- users (the owners of project and repository tokens) have none. Earlier
-- versions checked this in code only: if two users already share an address,
-- this migration fails, and an administrator must change or delete one of
-- them (in the database) before latch starts (docs/deployment.md).

CREATE UNIQUE INDEX users_email_unique ON users (email_lower) WHERE email_lower <> '';
