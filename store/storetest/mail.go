package storetest

import (
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

func testMailOutbox(t *testing.T, s store.Store) {
	enqueue := func(subject string, due int64) *store.Mail {
		t.Helper()
		m := &store.Mail{To: []string{"a@example.com", "b@example.com"}, Subject: subject, Body: "body of " + subject, NextAttemptAt: due, CreatedAt: 1}
		must(t, s.EnqueueMail(ctx, m))
		if m.ID == 0 {
			t.Fatal("EnqueueMail left ID 0")
		}
		return m
	}
	wantErr(t, "EnqueueMail without recipients", s.EnqueueMail(ctx, &store.Mail{Subject: "x"}), latch.ErrInvalid)
	wantErr(t, "EnqueueMail with a comma in a recipient", s.EnqueueMail(ctx, &store.Mail{To: []string{"a@x,b@y"}}), latch.ErrInvalid)

	if _, ok, err := s.NextMailDue(ctx); err != nil || ok {
		t.Errorf("NextMailDue on an empty outbox = %v, %v", ok, err)
	}
	m1 := enqueue("one", 0)
	m2 := enqueue("two", 100)
	m3 := enqueue("three", 500)
	if at, ok, err := s.NextMailDue(ctx); err != nil || !ok || at != 0 {
		t.Errorf("NextMailDue = %d, %v, %v; want 0", at, ok, err)
	}

	claim := func(now int64, token string, limit int) []store.Mail {
		t.Helper()
		ms, err := s.ClaimMail(ctx, store.MailClaim{Now: now, LeaseUntil: now + 1000, Token: token, Limit: limit})
		must(t, err)
		return ms
	}
	subjects := func(ms []store.Mail) []string {
		out := []string{}
		for _, m := range ms {
			out = append(out, m.Subject)
		}
		return out
	}
	got := claim(100, "A", 10)
	wantList(t, "claimed at 100", subjects(got), "one", "two")
	if len(got) == 2 {
		if got[0].Attempts != 1 || got[0].Status != store.MailSending || got[0].ClaimToken != "A" || len(got[0].To) != 2 || got[0].Body != "body of one" {
			t.Errorf("claimed row = %+v", got[0])
		}
	}
	wantList(t, "claimed again while leased", subjects(claim(200, "B", 10)))
	wantList(t, "limit 1 at 600", subjects(claim(600, "B", 1)), "three")

	// The holder finishes; a stranger's token changes nothing.
	if ok, err := s.FinishMail(ctx, m1.ID, "B", 150, "", 0, false); err != nil || ok {
		t.Errorf("FinishMail with another's token = %v, %v", ok, err)
	}
	if ok, err := s.FinishMail(ctx, m1.ID, "A", 150, "", 0, false); err != nil || !ok {
		t.Errorf("FinishMail sent = %v, %v", ok, err)
	}
	if ok, err := s.FinishMail(ctx, m2.ID, "A", 150, "421 try later", 2000, false); err != nil || !ok {
		t.Errorf("FinishMail retry = %v, %v", ok, err)
	}
	got1, err := s.MailByID(ctx, m1.ID)
	must(t, err)
	if got1.Status != store.MailSent || got1.SentAt != 150 {
		t.Errorf("sent mail = %+v", got1)
	}
	got2, _ := s.MailByID(ctx, m2.ID)
	if got2.Status != store.MailPending || got2.NextAttemptAt != 2000 || got2.LastError != "421 try later" || got2.Attempts != 1 {
		t.Errorf("mail to retry = %+v", got2)
	}
	wantList(t, "claimed at 1500: m3's lease (1600) runs, m2 not due", subjects(claim(1500, "C", 10)))
	// m3's claimer "died": its lease expires and another sender takes it.
	wantList(t, "claimed at 1700", subjects(claim(1700, "C", 10)), "three")
	if ok, _ := s.FinishMail(ctx, m3.ID, "B", 1700, "", 0, false); ok {
		t.Error("the expired claim holder could still finish")
	}
	got3, _ := s.MailByID(ctx, m3.ID)
	if got3.Attempts != 2 || got3.ClaimToken != "C" {
		t.Errorf("re-claimed mail = %+v", got3)
	}
	if ok, _ := s.FinishMail(ctx, m3.ID, "C", 1800, "550 no such user", 0, true); !ok {
		t.Error("giving up failed")
	}
	got3, _ = s.MailByID(ctx, m3.ID)
	if got3.Status != store.MailFailed || got3.LastError != "550 no such user" {
		t.Errorf("failed mail = %+v", got3)
	}
	if at, ok, err := s.NextMailDue(ctx); err != nil || !ok || at != 2000 {
		t.Errorf("NextMailDue = %d, %v, %v; want 2000", at, ok, err)
	}
	wantList(t, "claimed at 2000", subjects(claim(2000, "D", 10)), "two")
	if ok, _ := s.FinishMail(ctx, m2.ID, "D", 2100, "", 0, false); !ok {
		t.Error("finishing m2 failed")
	}
	_, err = s.MailByID(ctx, 999999)
	wantErr(t, "MailByID(unknown)", err, latch.ErrNotFound)

	// An enqueue rolled back with its transaction leaves nothing.
	err = s.WithTx(ctx, func(tx store.Store) error {
		if err := tx.EnqueueMail(ctx, &store.Mail{To: []string{"c@example.com"}, Subject: "rolled back", CreatedAt: 1}); err != nil {
			return err
		}
		return latch.ErrConflict
	})
	wantErr(t, "the rolled back transaction", err, latch.ErrConflict)
	wantList(t, "claimed after a rolled back enqueue", subjects(claim(5000, "E", 10)))

	// Purging: m1 and m2 are sent, m3 failed, all created at 1; a pending
	// message as old stays, and so does anything created since.
	old := enqueue("old but pending", 0)
	recent := &store.Mail{To: []string{"a@example.com"}, Subject: "recent", CreatedAt: 6000}
	must(t, s.EnqueueMail(ctx, recent))
	if n, err := s.PurgeMail(ctx, 1); err != nil || n != 0 {
		t.Errorf("PurgeMail(1) = %d, %v; want nothing older than 1", n, err)
	}
	if n, err := s.PurgeMail(ctx, 5000); err != nil || n != 3 {
		t.Errorf("PurgeMail(5000) = %d, %v; want the 3 finished messages", n, err)
	}
	for _, m := range []*store.Mail{m1, m2, m3} {
		_, err := s.MailByID(ctx, m.ID)
		wantErr(t, "a purged message", err, latch.ErrNotFound)
	}
	for _, m := range []*store.Mail{old, recent} {
		if _, err := s.MailByID(ctx, m.ID); err != nil {
			t.Errorf("message %q after purging: %v", m.Subject, err)
		}
	}
	wantList(t, "claimed after purging", subjects(claim(6000, "F", 10)), "old but pending", "recent")
}
