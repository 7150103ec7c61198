package store

import (
	"context"

	"github.com/latchhq/latch"
)

// SSHKey is a stored SSH public key: a user's key (UserID set) or an access
// key (UserID 0) granted on projects and repositories through
// AccessKeyGrants. A key's fingerprint is unique across both kinds, so the
// same key can never be a user key and an access key at once.
type SSHKey struct {
	ID     int64
	UserID int64 // owner of a user key; 0 for an access key
	// Text is the normalized authorized_keys form; it never changes.
	Text  string
	Label string
	// Fingerprint is "SHA256:" and the unpadded base64 SHA-256 of the key's
	// wire form: the lookup key during SSH authentication.
	Fingerprint       string
	Algorithm         string // RSA, ECDSA, ED25519
	Bits              int
	CreatedAt         int64 // epoch ms
	CreatedBy         int64 // user id of whoever added it
	LastAuthenticated int64 // epoch ms, 0 for never
	ExpiresAt         int64 // epoch ms, 0 for never; set once, when the key is added
}

// ExpiryDays returns the number of days the key was given when it was added
// (rounded to the nearest), or 0 if it never expires.
func (k *SSHKey) ExpiryDays() int {
	if k.ExpiresAt == 0 {
		return 0
	}
	const day = 24 * 60 * 60 * 1000
	return int((k.ExpiresAt - k.CreatedAt + day/2) / day)
}

// Expired reports whether the key has expired at now (epoch ms).
func (k *SSHKey) Expired(now int64) bool { return k.ExpiresAt != 0 && now >= k.ExpiresAt }

// IsAccessKey reports whether k is an access key rather than a user key.
func (k *SSHKey) IsAccessKey() bool { return k.UserID == 0 }

// AccessKeyGrant is an access key's permission on one project (RepoID 0,
// PROJECT_READ or PROJECT_WRITE) or repository (REPO_READ or REPO_WRITE).
type AccessKeyGrant struct {
	KeyID      int64
	ProjectID  int64
	RepoID     int64
	Permission latch.Permission
}

// Resource is the project or repository the grant applies to.
func (g AccessKeyGrant) Resource() latch.Resource {
	return latch.Resource{ProjectID: g.ProjectID, RepoID: g.RepoID}
}

// AccessKey is an access key with one of its grants.
type AccessKey struct {
	Key   SSHKey
	Grant AccessKeyGrant
}

// KeyUse is one batched "last authenticated" record of a key.
type KeyUse struct {
	ID int64
	At int64 // epoch ms
}

// Keys stores SSH keys and access key grants.
type Keys interface {
	// CreateKey stores k, filling k.ID. A fingerprint already stored, as a
	// user key or as an access key, is a conflict.
	CreateKey(ctx context.Context, k *SSHKey) error
	KeyByID(ctx context.Context, id int64) (*SSHKey, error)
	// KeyByFingerprint is the lookup SSH authentication makes: one indexed
	// equality query.
	KeyByFingerprint(ctx context.Context, fingerprint string) (*SSHKey, error)
	// ListUserKeys lists a user's keys, oldest first; label, when not empty,
	// keeps the keys whose label starts with it (case-insensitively).
	ListUserKeys(ctx context.Context, userID int64, label string, p Page) ([]SSHKey, error)
	// UpdateKeyLabel changes a key's label, the only mutable part of a key.
	UpdateKeyLabel(ctx context.Context, id int64, label string) error
	// DeleteKey deletes a key with all its grants.
	DeleteKey(ctx context.Context, id int64) error
	// DeleteUserKeys deletes every key of a user and returns how many.
	DeleteUserKeys(ctx context.Context, userID int64) (int, error)

	// SetAccessKeyGrant grants an access key a permission on a project or
	// repository, replacing the permission it had there. It reports whether
	// the grant is new.
	SetAccessKeyGrant(ctx context.Context, g AccessKeyGrant) (created bool, err error)
	// RemoveAccessKeyGrant removes an access key's grant on exactly r and
	// reports whether there was one.
	RemoveAccessKeyGrant(ctx context.Context, keyID int64, r latch.Resource) (bool, error)
	// AccessKeyGrants lists every grant of an access key, projects first.
	AccessKeyGrants(ctx context.Context, keyID int64) ([]AccessKeyGrant, error)
	// ListAccessKeys lists the access keys granted on exactly r (a project
	// when r.RepoID is 0), oldest first; label filters as in ListUserKeys.
	ListAccessKeys(ctx context.Context, r latch.Resource, label string, p Page) ([]AccessKey, error)

	// RecordKeyUse stores a batch of last-authenticated times, never moving
	// one back.
	RecordKeyUse(ctx context.Context, uses []KeyUse) error
}
