package backend

import (
	"context"
	"errors"

	"github.com/latchhq/latch"
)

// GitRepo resolves the repository a Git request names and decides whether p
// may read it (write false) or push to it (write true). It answers
// latch.ErrNotFound both for a missing repository and for one p may not see,
// so that existence is not revealed, and a *Denied when p may see it but not
// push.
func (b *Backend) GitRepo(ctx context.Context, p *latch.Principal, projectKey, slug string, write bool) (*latch.Repository, error) {
	repo, err := b.store.RepoBySlug(ctx, projectKey, slug)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, latch.Errorf(latch.ErrNotFound, "Repository not found")
	}
	if err != nil {
		return nil, err
	}
	action := latch.ReadRepo
	if write {
		action = latch.WriteRepo
	}
	d, err := b.authz.Authorize(ctx, p, action, resourceOf(repo))
	if err != nil {
		return nil, err
	}
	if !d.Visible {
		return nil, latch.Errorf(latch.ErrNotFound, "Repository not found")
	}
	if !d.Allowed {
		return nil, &Denied{Decision: d}
	}
	return repo, nil
}
