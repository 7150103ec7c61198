package store

import "context"

// Mail states in the outbox.
const (
	MailPending = "pending" // waiting for its next attempt
	MailSending = "sending" // claimed by a sender until LeaseUntil
	MailSent    = "sent"
	MailFailed  = "failed" // gave up after the last attempt
)

// Mail is one message in the outbox: written in the transaction of the change
// it reports, delivered later by a background sender, so that no request waits
// on SMTP and no message is lost while SMTP is down or latch restarts.
type Mail struct {
	ID      int64
	To      []string
	Subject string
	Body    string // plain text

	Status        string
	Attempts      int   // delivery attempts started so far
	NextAttemptAt int64 // epoch ms: not tried before
	LeaseUntil    int64 // epoch ms: a claim expires then (sender crashed)
	ClaimToken    string
	LastError     string
	CreatedAt     int64
	SentAt        int64
}

// MailClaim asks for up to Limit messages due at Now, claimed for the
// caller (Token) until LeaseUntil.
type MailClaim struct {
	Now        int64
	LeaseUntil int64
	Token      string
	Limit      int
}

// Outbox stores outgoing mail.
type Outbox interface {
	// EnqueueMail adds m as pending, due at m.NextAttemptAt (0: at once),
	// filling m.ID.
	EnqueueMail(ctx context.Context, m *Mail) error
	// ClaimMail marks up to c.Limit due messages (pending and due, or sending
	// with an expired lease) as sending under c.Token, counts the attempt and
	// returns them, oldest first. Two claimers never get the same message
	// while its lease runs.
	ClaimMail(ctx context.Context, c MailClaim) ([]Mail, error)
	// FinishMail records the outcome of an attempt by the claim holder: sent
	// (err "" and retryAt 0), to retry at retryAt, or failed for good
	// (giveUp). It reports false when the claim was lost (the lease expired
	// and another sender took the message).
	FinishMail(ctx context.Context, id int64, token string, now int64, errMsg string, retryAt int64, giveUp bool) (bool, error)
	// MailByID returns one message, for tests and administration.
	MailByID(ctx context.Context, id int64) (*Mail, error)
	// NextMailDue returns the earliest NextAttemptAt (or lease expiry) of
	// the unsent messages, and false when there are none.
	NextMailDue(ctx context.Context) (int64, bool, error)
	// PurgeMail deletes the sent and failed messages created before before
	// (epoch ms) and reports how many it deleted; messages still to be
	// delivered stay, however old.
	PurgeMail(ctx context.Context, before int64) (int64, error)
}
