package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/latchhq/latch/sqlite"
)

// Several processes opening one fresh file at once (nodes starting together
// on one host) all succeed: the switch to WAL is retried while another
// process holds it.
func TestOpenFreshFileFromSeveralProcesses(t *testing.T) {
	if path := os.Getenv("LATCH_SQLITE_OPEN"); path != "" {
		t.Skip("helper process")
	}
	for round := range 3 {
		path := filepath.Join(t.TempDir(), "latch.db")
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(os.Args[0], "-test.run=^TestOpenHelper$", "-test.count=1")
				cmd.Env = append(os.Environ(), "LATCH_SQLITE_OPEN="+path)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("%v: %s", err, out)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
	}
}

// TestOpenHelper is run in a child process by the test above.
func TestOpenHelper(t *testing.T) {
	path := os.Getenv("LATCH_SQLITE_OPEN")
	if path == "" {
		t.Skip("run by TestOpenFreshFileFromSeveralProcesses")
	}
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
