-- 0008_revoked_owner: the name of a revoked token's owner, so that a later
-- refusal of its secret is audited against them.

ALTER TABLE revoked_tokens ADD COLUMN owner TEXT NOT NULL DEFAULT '';
